// The kiosk at a compound's 红帆驿站, for a first-time elderly resident: every step a big tap
// (phrases, pickers, an on-screen keypad, a voice note), a ticket they keep (a printed slip and a
// QR code for their own phone), and nothing lost. A report is kept in localStorage with its
// request id until the server says it is stored, so a dropped link or a reload sends it again,
// and the server stores it once; one stored after the resident left is announced on the home
// screen.

import { Connection, me, merge, showLink } from "./connection.js";
import { applyI18n, labelled, lang, name, setLang, t, toggleLang } from "./i18n.js";
import { el, kept } from "./format.js";
import { questions, resetAnswers, thanks } from "./answer.js";
import {
  buildingLabel, categoryTiles, closeKeypad, focusKey, hasContent, keyButton, keypadOpen, missing, newDraft, openKeypad,
  phrasesPicker, placePicker, reportOf, urgencyPicker,
} from "./pickers.js";
import { readAloud, ticketView } from "./slip.js";

const PENDING = "hongfan.kiosk.pending";
const LATE = "hongfan.kiosk.late";
/** A station may lengthen the idle times (seconds): `hongfan.kiosk.idle` = {"ask":90,"form":180,"grace":30}. */
const IDLE = { ask: 90, form: 180, grace: 30, ...readJson("hongfan.kiosk.idle", {}) };
/** How long a report stored after its resident left is announced. */
const LATE_SHOWN_MS = 30 * 60_000;
const VOICE_MAX_MS = 60_000;

const screen = document.getElementById("screen");
let hello = null;
let draft = null;          // the report being filled in
let showing = null;        // { incident, key } whose ticket is on screen
let lookup = null;         // { ticket, proof: "phone_tail" | "key", value } while looking up
let problem = "";          // what the resident must still do, shown beside the button they pressed
let needed = null;         // the part of the form that problem is about ("what", "where"), marked
let shownScreen = null;    // the screen drawn last: a new one starts at its top
let requestNo = 1;
let idleTimer;
let askTimer;
let asking = false;

function readJson(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key) ?? "null") ?? fallback; } catch { return fallback; }
}
const pending = () => readJson(PENDING, []);
const savePending = (list) => localStorage.setItem(PENDING, JSON.stringify(list));
/** Reports stored after their resident left, still announced; the expired ones are forgotten. */
function late() {
  const stored = readJson(LATE, []);
  const fresh = stored.filter((l) => Date.now() - l.at < LATE_SHOWN_MS);
  if (fresh.length !== stored.length) localStorage.setItem(LATE, JSON.stringify(fresh));
  return fresh;
}
const saveLate = (list) => localStorage.setItem(LATE, JSON.stringify(list));

// ---- Idle: ask first, wait longer while a form has content, then start over in Chinese. ----

function touched() {
  clearTimeout(idleTimer);
  clearTimeout(askTimer);
  if (asking) { asking = false; document.getElementById("idle-ask")?.remove(); }
  // English chosen on the home screen also returns to Chinese for the next resident.
  const busy = draft || showing || lookup || keypadOpen() || lang() !== "zh";
  if (!busy) return;
  idleTimer = setTimeout(askIfStillThere, (hasContent(draft) ? IDLE.form : IDLE.ask) * 1000);
}

function askIfStillThere() {
  asking = true;
  // A modal dialog: above the keypad, if that is open (a later modal dialog is on top).
  const dialog = el("dialog", { class: "overlay-dialog", id: "idle-ask", role: "alertdialog", "aria-labelledby": "idle-title", onclick: touched },
    el("h2", { id: "idle-title" }, t("still_here")),
    el("p", {}, t("resetting")),
    el("div", { class: "actions" }, el("button", { type: "button", class: "primary", id: "more-time" }, t("yes_more_time"))));
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); touched(); });
  document.body.append(dialog);
  dialog.showModal();
  dialog.querySelector("button").focus();
  askTimer = setTimeout(startOver, IDLE.grace * 1000);
}

function startOver() {
  stopMedia();
  asking = false;
  document.getElementById("idle-ask")?.remove();
  closeKeypad();
  document.getElementById("words")?.remove();
  draft = null; showing = null; lookup = null; problem = ""; needed = null;
  setLang("zh");
  showLink();
  render();
}
// A touch anywhere counts, except on the idle question itself: it answers by its own click (so
// the tap that answers it cannot land on what lies beneath).
for (const kind of ["pointerdown", "keydown"]) {
  document.addEventListener(kind, (e) => { if (!e.target.closest?.("#idle-ask")) touched(); }, { passive: true });
}

// ---- The live link ----

const conn = new Connection({
  as: "kiosk",
  onState: showLink,
  onHello(msg) {
    const first = !hello;
    hello = msg;
    flush();
    if (first) render();
  },
  onMessage(msg) {
    if (msg.type === "reported") {
      const sent = pending().find((p) => p.request_id === msg.request_id);
      savePending(pending().filter((p) => p.request_id !== msg.request_id));
      if (draft?.request_id === msg.request_id) {
        draft = null;
        problem = "";
        showing = { incident: msg.incident, key: msg.key };
        render();
        // The number said once, for a resident who reads with difficulty (the private code
        // only when they ask: others may be standing by).
        readAloud(msg.incident.ticket);
      } else if (sent) {
        // Stored after its resident left: the home screen says so, and the slip can be printed.
        saveLate([...late(), { at: Date.now(), incident: msg.incident, key: msg.key }]);
        if (!draft && !showing && !lookup) render();
      }
    } else if (msg.type === "event" && showing?.incident.id === msg.event.incident) {
      showing.incident = merge(showing.incident, msg.patch);
      render();
    } else if (msg.type === "found" && lookup) {
      showing = { incident: msg.incident, key: lookup.proof === "key" ? lookup.value : null };
      lookup = null;
      render();
    } else if (msg.type === "error") {
      if (msg.request_id) {
        // The server refused it for good (not a dropped link): do not send it again.
        savePending(pending().filter((p) => p.request_id !== msg.request_id));
        if (draft?.request_id === msg.request_id) { draft.sending = false; problem = msg.message_zh; needed = null; render(); return; }
      }
      problem = msg.code === "wrong_key" ? t("wrong_key") : msg.message_zh;
      // A refused answer may be given again.
      resetAnswers();
      render();
    }
  },
  onCommunity(community) {
    if (!hello) return;
    hello.community = community;
    // The resident at the screen keeps what they are doing; the choice of categories changes.
    if (!draft && !showing && !lookup) render();
  },
  onUnauthorized() { hello = null; renderPairing(); },
});

/** Sends every report still waiting, oldest first. */
function flush() {
  for (const p of pending()) conn.send({ type: "report", request_id: p.request_id, report: p.report });
}

const thisCompound = () => hello.community.compounds.find((c) => c.id === hello.identity.compounds[0]);
const categoryName = (c) => name(c.name, c.name_en);
const categoryOf = (id) => hello.community.categories.find((c) => c.id === id);

// ---- Screens ----

/** Puts nodes on the screen; what is left out (null) is left out, not printed as "null". */
function show(...nodes) {
  screen.append(...kept(nodes));
}

function render() {
  applyI18n();
  if (!hello) return;
  document.getElementById("station").textContent = `${thisCompound()?.station ?? hello.identity.name} · ${t("kiosk")}`;
  // Drawn again in place: the page stays where the finger is, and so does the focus. Only a
  // new screen starts at its top (on a screen too small to hold it all).
  const focused = focusKey(document.activeElement, screen);
  const which = showing ? "ticket" : lookup ? "lookup" : draft ? "form" : "home";
  screen.replaceChildren();
  document.getElementById("toast").hidden = true;
  if (which !== "ticket") document.getElementById("slip")?.remove();
  if (which === "ticket") renderTicket();
  else if (which === "lookup") renderLookup();
  else if (which === "form") renderForm();
  else renderHome();
  if (which !== shownScreen) window.scrollTo(0, 0);
  else if (focused) screen.querySelector(focused)?.focus({ preventScroll: true });
  shownScreen = which;
  touched();
}

function renderHome() {
  show(
    problem ? el("p", { class: "error-text", role: "alert", id: "problem" }, problem) : null,
    ...late().map((l) => el("div", { class: "notice late", role: "status" },
      el("p", {}, `${buildingLabel(l.incident.report.building)}${t("late_banner")}`, el("strong", { class: "late-ticket" }, l.incident.ticket)),
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => claimLate(l) }, t("print")),
        el("button", { type: "button", onclick: () => { saveLate(late().filter((x) => x.incident.id !== l.incident.id)); render(); } }, t("dismiss"))))),
    el("h2", {}, t("choose")),
    categoryTiles(hello.community.categories, start),
    el("div", { class: "actions spaced" },
      el("button", { type: "button", id: "lookup", onclick: () => { lookup = { ticket: "", proof: null, value: "" }; problem = ""; render(); } }, t("lookup"))),
  );
}

/**
 * The slip of a report stored after its resident left goes only to whoever gives the last four
 * digits of the phone number it was reported with (anyone may read the banner); a report with no
 * phone shows its ticket alone, without the slip's code.
 */
function claimLate(l) {
  const tail = (l.incident.report.phone ?? "").replace(/\D/g, "").slice(-4);
  const open = (key) => {
    showing = { incident: l.incident, key };
    saveLate(late().filter((x) => x.incident.id !== l.incident.id));
    render();
  };
  if (!tail) { open(null); return; }
  openKeypad(t("by_phone_tail"), "", 4, (typed) => {
    if (typed === tail) open(l.key);
    else { problem = t("wrong_key"); render(); }
  });
}

function start(category) {
  draft = newDraft(category, hello.identity.compounds[0]);
  problem = "";
  needed = null;
  render();
}

/** Applies a change the resident made to the form, then draws it again, in place. */
function change(apply) {
  apply();
  if (problem) { problem = ""; needed = null; }
  render();
}

/** The buildings of this kiosk's compound, to pick by a tap. */
function places() {
  const compound = thisCompound();
  return compound ? [{ compound, buildings: compound.buildings }] : [];
}

/**
 * The form, in two columns on a landscape screen so that it fits it whole (what happened on the
 * left; where, how urgent and the buttons on the right, under the finger that taps them): no
 * scrolling, and a message appears beside the button that was pressed.
 */
function renderForm() {
  const c = draft.category;
  const offline = pending().some((p) => p.request_id === draft.request_id);
  show(
    el("form", { class: "kiosk-form report-form", onsubmit: (e) => { e.preventDefault(); submit(); } },
      el("div", { class: "form-head" },
        el("h2", {}, el("span", { "aria-hidden": "true" }, c.icon, " "), categoryName(c)),
        c.emergency ? el("section", { class: "emergency", "aria-labelledby": "emergency-title" },
          el("h3", { id: "emergency-title" }, t("emergency_title")),
          el("p", { class: "numbers" },
            el("span", {}, `${t("emergency_police")} `, el("strong", {}, "110")),
            el("span", {}, `${t("emergency_fire")} `, el("strong", {}, "119")),
            el("span", {}, `${t("emergency_ambulance")} `, el("strong", {}, "120"))),
          el("p", { class: "note" }, t("emergency_note"))) : null),
      el("div", { class: "form-what" },
        phrasesPicker(draft, change, needed === "what"),
        el("fieldset", { class: "more" },
          el("legend", {}, t("attach")),
          mediaControls(),
          el("div", { class: "choices" },
            wordsButton(),
            keyButton(draft, "room", t("room_button"), 6, change),
            keyButton(draft, "phone", t("phone_button"), 15, change)))),
      el("div", { class: "form-where" },
        placePicker(draft, places(), change, needed === "where"),
        urgencyPicker(draft, change),
        el("div", { class: "form-end" },
          offline ? el("p", { class: "notice", role: "status" }, t("saved_offline")) : null,
          problem ? el("p", { class: "error-text", role: "alert", id: "problem" }, problem) : null,
          el("div", { class: "actions" },
            el("button", { type: "button", id: "back", onclick: () => { stopMedia(); draft = null; problem = ""; needed = null; render(); } }, t("back")),
            el("button", { type: "submit", class: "primary", id: "submit", disabled: draft.sending }, draft.sending ? t("sending") : t("submit")))))),
  );
}

/** The resident's own words, typed in a dialog of their own (most will tap instead). */
function wordsButton() {
  const written = draft.description.trim();
  return el("button", { type: "button", class: "choice keyed", id: "own-words", onclick: openWords },
    labelled(t("own_words_button")), el("span", { class: "value" }, written ? (written.length > 8 ? `${written.slice(0, 8)}…` : written) : t("not_given")));
}

function openWords() {
  document.getElementById("words")?.remove();
  const area = el("textarea", { id: "f-description", name: "description", autocomplete: "off", maxlength: 400, "aria-labelledby": "words-title" });
  area.value = draft.description;
  const close = () => { dialog.close(); dialog.remove(); };
  const dialog = el("dialog", { class: "overlay-dialog words", id: "words", "aria-labelledby": "words-title" },
    el("h2", { id: "words-title" }, t("own_words")),
    area,
    el("div", { class: "actions" },
      el("button", { type: "button", id: "words-back", onclick: close }, t("back")),
      el("button", { type: "button", class: "primary", id: "words-ok", onclick: () => { close(); change(() => { draft.description = area.value; }); } }, t("keypad_ok"))));
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); close(); });
  document.body.append(dialog);
  dialog.showModal();
  area.focus();
}

function submit() {
  const lacking = missing(draft);
  if (lacking) {
    problem = t(lacking);
    needed = lacking === "need_where" ? "where" : "what";
    render();
    return;
  }
  const report = reportOf(draft);
  // Kept before it is sent: from here on it is never lost.
  savePending([...pending().filter((p) => p.request_id !== draft.request_id), { request_id: draft.request_id, report }]);
  draft.sending = true;
  problem = "";
  conn.send({ type: "report", request_id: draft.request_id, report });
  render();
}

// ---- Voice and photo ----

let media = null; // { stream, recorder?, started?, timer? } while the microphone or camera is on

function stopMedia() {
  if (!media) return;
  clearTimeout(media.timer);
  // Stopped because the resident left or went back: what was recorded is not theirs to send.
  media.discard = true;
  if (media.recorder?.state === "recording") media.recorder.stop();
  media.stream.getTracks().forEach((track) => track.stop());
  media = null;
  document.getElementById("camera")?.remove();
}

function mediaControls() {
  const attached = (kind) => draft.attachments.find((a) => a.kind === kind);
  const remove = (kind) => () => { draft.attachments = draft.attachments.filter((a) => a.kind !== kind); render(); };
  const voice = attached("voice");
  const photo = attached("photo");
  const recording = media?.recorder?.state === "recording";
  if (!navigator.mediaDevices?.getUserMedia) return el("p", { class: "hint" }, t("no_media"));
  return el("div", { class: "choices" },
    voice
      ? el("span", { class: "attached", id: "voice-saved" }, `🎤 ${t("voice_saved")}`, el("button", { type: "button", onclick: remove("voice") }, t("remove_attachment")))
      : el("button", { type: "button", class: "choice", id: "record", "aria-pressed": String(recording), onclick: recording ? stopRecording : startRecording },
        recording ? `⏹ ${t("voice_stop")}` : `🎤 ${t("voice")}`),
    photo
      ? el("span", { class: "attached", id: "photo-saved" }, `📷 ${t("photo_saved")}`, el("button", { type: "button", onclick: remove("photo") }, t("remove_attachment")))
      : el("button", { type: "button", class: "choice", id: "photo", onclick: openCamera }, `📷 ${t("photo")}`),
    recording ? el("p", { class: "notice", role: "status", id: "recording" }, t("voice_recording")) : null);
}

async function upload(blob) {
  const r = await fetch("/api/attachments", { method: "POST", body: blob, credentials: "same-origin" }).catch(() => null);
  if (!r?.ok) throw new Error("upload");
  return r.json();
}

async function attach(kind, blob) {
  try {
    const attachment = await upload(blob);
    if (draft) draft.attachments = [...draft.attachments.filter((a) => a.kind !== kind), attachment];
    problem = "";
  } catch {
    problem = t("attach_failed");
  }
  render();
}

async function startRecording() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream);
    const chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    const recording = { stream, recorder, timer: setTimeout(stopRecording, VOICE_MAX_MS) };
    recorder.onstop = () => {
      stream.getTracks().forEach((track) => track.stop());
      if (media === recording) media = null;
      if (!recording.discard) attach("voice", new Blob(chunks, { type: recorder.mimeType }));
    };
    media = recording;
    recorder.start();
    render();
  } catch {
    problem = t("no_media");
    render();
  }
}

function stopRecording() {
  if (media?.recorder?.state === "recording") { clearTimeout(media.timer); media.recorder.stop(); }
}

async function openCamera() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280 } });
  } catch {
    problem = t("no_media");
    render();
    return;
  }
  media = { stream };
  const video = el("video", { autoplay: true, playsinline: true, muted: true, id: "camera-view" });
  video.srcObject = stream;
  const take = async () => {
    // Drawn onto a canvas and encoded afresh: nothing of the camera's metadata survives, and
    // the photo is at most 1280 px wide.
    const scale = Math.min(1, 1280 / (video.videoWidth || 1280));
    const canvas = el("canvas", { width: Math.round((video.videoWidth || 640) * scale), height: Math.round((video.videoHeight || 480) * scale) });
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.85));
    stopMedia();
    attach("photo", blob);
  };
  document.body.append(el("div", { class: "overlay", role: "dialog", "aria-modal": "true", "aria-labelledby": "camera-title", id: "camera" },
    el("div", { class: "dialog" },
      el("h2", { id: "camera-title" }, t("photo")),
      video,
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => { stopMedia(); render(); } }, t("back")),
        el("button", { type: "button", class: "primary", id: "take-photo", onclick: take }, `📷 ${t("photo_take")}`)))));
}

// ---- The ticket: on screen, on a slip, on the resident's phone ----

function renderTicket() {
  const { incident: i, key } = showing;
  show(ticketView(i, key, {
    category: categoryOf(i.report.category),
    compound: hello.community.compounds.find((c) => c.id === i.report.compound),
    community: hello.identity.community,
    done: () => { showing = null; lookup = null; problem = ""; render(); },
    extra: [
      i.notices?.length ? el("ul", { class: "notices", "aria-label": t("notices_title") }, i.notices.map((n) => el("li", {}, `${n.by.name}：${n.text}`))) : null,
      i.status === "resolved" && !i.rating && key ? questions(i.id, i.round, (solved, rating) => {
        if (!conn.send({ type: "rate", id: requestNo++, incident: i.id, rating, key, solved })) throw new Error("offline");
      }) : null,
      // Thanks once answered; "handled again" while the second handling runs.
      (i.status === "resolved" && i.rating) || (i.round && i.status !== "resolved") ? thanks(i) : null,
      problem ? el("p", { class: "error-text", role: "alert", id: "problem" }, problem) : null,
    ],
  }));
}

// ---- Looking up a ticket: the number and a proof, both on the keypad ----

function renderLookup() {
  const held = (field) => (field === "ticket" ? lookup.ticket : lookup.proof === field ? lookup.value : "");
  const ask = (field, label, max) => () => openKeypad(label, held(field), max, (v) => {
    if (field === "ticket") lookup.ticket = v; else { lookup.proof = field; lookup.value = v; }
    problem = "";
    render();
  });
  const ready = lookup.ticket && lookup.proof && lookup.value;
  show(
    el("h2", {}, t("lookup")),
    el("div", { class: "kiosk-form" },
      el("p", {}, t("lookup_ticket")),
      el("button", { type: "button", class: "choice keyed", id: "lookup-ticket", onclick: ask("ticket", t("ticket"), 8) }, labelled(t("ticket")), el("span", { class: "value" }, lookup.ticket || t("not_given"))),
      el("p", {}, t("lookup_proof")),
      el("div", { class: "choices" },
        el("button", { type: "button", class: "choice keyed", id: "lookup-phone", "aria-pressed": String(lookup.proof === "phone_tail"), onclick: ask("phone_tail", t("by_phone_tail"), 4) },
          labelled(t("by_phone_tail")), el("span", { class: "value" }, lookup.proof === "phone_tail" ? lookup.value : t("not_given"))),
        el("button", { type: "button", class: "choice keyed", id: "lookup-key", "aria-pressed": String(lookup.proof === "key"), onclick: ask("key", t("by_key"), 10) },
          labelled(t("by_key")), el("span", { class: "value" }, lookup.proof === "key" ? lookup.value : t("not_given")))),
      problem ? el("p", { class: "error-text", role: "alert", id: "problem" }, problem) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", id: "back", onclick: () => { lookup = null; problem = ""; render(); } }, t("back")),
        el("button", { type: "button", class: "primary", id: "find", disabled: !ready, onclick: () => {
          problem = "";
          conn.send({ type: "lookup", id: requestNo++, ticket: lookup.ticket, [lookup.proof]: lookup.value });
        } }, t("find")))),
  );
}

// ---- Pairing ----

function renderPairing(refused) {
  applyI18n();
  const input = el("input", { id: "credential", autocomplete: "off" });
  const error = el("p", { class: "error-text", role: "alert", id: "pair-error" }, refused ?? "");
  screen.replaceChildren(
    el("h2", {}, t("pair_title")),
    el("form", { class: "kiosk-form", onsubmit: async (e) => {
      e.preventDefault();
      const why = await pair(input.value);
      if (why) error.textContent = why; else location.reload();
    } },
      el("label", {}, t("pair_help"), input), error,
      el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, t("pair")))),
  );
}

/** Pairs with a credential or a pairing code; answers why not, or nothing when paired. */
async function pair(credential) {
  const r = await fetch("/api/kiosk/pair", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ credential: credential.trim() }) })
    .catch(() => null);
  if (!r) return t("offline");
  if (r.ok) return null;
  const refusal = await r.json().catch(() => ({}));
  return refusal.message_zh ?? t("wrong");
}

document.getElementById("lang").addEventListener("click", () => toggleLang(() => { showLink(); render(); }));

async function main() {
  // Each resident starts in Chinese, whatever the one before chose.
  setLang("zh");
  // A pairing link (#pair=…) pairs once; the credential leaves the address bar at once.
  const match = location.hash.match(/pair=([^&]+)/);
  let refused = null;
  if (match) {
    history.replaceState(null, "", location.pathname);
    refused = await pair(decodeURIComponent(match[1]));
  }
  // Not paired (401): show pairing, and why a pairing link did not work. Server away: keep
  // trying, it will come back.
  const identity = await me("kiosk").catch(() => "away");
  if (identity === null) { renderPairing(refused); return; }
  conn.start();
}
main();
