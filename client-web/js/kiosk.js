// The kiosk at a compound's 红帆驿站, for a first-time elderly resident: every step a big tap
// (phrases, pickers, an on-screen keypad, a voice note), a ticket they keep (a printed slip and a
// QR code for their own phone), and nothing lost. A report is kept in localStorage with its
// request id until the server says it is stored, so a dropped link or a reload sends it again,
// and the server stores it once; one stored after the resident left is announced on the home
// screen.

import { Connection, me, merge, showLink } from "./connection.js";
import { applyI18n, lang, name, setLang, t, toggleLang } from "./i18n.js";
import { el, formatTime } from "./format.js";
import { questions, resetAnswers, thanks } from "./answer.js";

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
let keypad = null;         // { field, label, value, max, done } while the keypad is open
let problem = "";          // what the resident must still do, shown on the form
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
  const kept = readJson(LATE, []);
  const fresh = kept.filter((l) => Date.now() - l.at < LATE_SHOWN_MS);
  if (fresh.length !== kept.length) localStorage.setItem(LATE, JSON.stringify(fresh));
  return fresh;
}
const saveLate = (list) => localStorage.setItem(LATE, JSON.stringify(list));

function requestId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// ---- Idle: ask first, wait longer while a form has content, then start over in Chinese. ----

function hasContent() {
  return !!draft && (draft.phrases.length > 0 || draft.description || draft.building || draft.attachments.length > 0 || draft.phone || draft.room);
}

function touched() {
  clearTimeout(idleTimer);
  clearTimeout(askTimer);
  if (asking) { asking = false; document.getElementById("idle-ask")?.remove(); }
  // English chosen on the home screen also returns to Chinese for the next resident.
  const busy = draft || showing || lookup || keypad || lang() !== "zh";
  if (!busy) return;
  idleTimer = setTimeout(askIfStillThere, (hasContent() ? IDLE.form : IDLE.ask) * 1000);
}

function askIfStillThere() {
  asking = true;
  const dialog = el("div", { class: "overlay", id: "idle-ask", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "idle-title", onclick: touched },
    el("div", { class: "dialog" },
      el("h2", { id: "idle-title" }, t("still_here")),
      el("p", {}, t("resetting")),
      el("div", { class: "actions" }, el("button", { type: "button", class: "primary", id: "more-time" }, t("yes_more_time")))));
  document.body.append(dialog);
  dialog.querySelector("button").focus();
  askTimer = setTimeout(startOver, IDLE.grace * 1000);
}

function startOver() {
  stopMedia();
  asking = false;
  document.getElementById("idle-ask")?.remove();
  draft = null; showing = null; lookup = null; keypad = null; problem = "";
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
    const compound = thisCompound();
    document.getElementById("station").textContent = `${compound?.station ?? msg.identity.name} · ${t("kiosk")}`;
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
        // Said once, for a resident who reads with difficulty.
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
        if (draft?.request_id === msg.request_id) { draft.sending = false; problem = msg.message_zh; render(); return; }
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
  screen.append(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function render() {
  applyI18n();
  if (!hello) return;
  screen.replaceChildren();
  document.getElementById("keypad")?.remove();
  document.getElementById("toast").hidden = true;
  window.scrollTo(0, 0);
  if (showing) renderTicket();
  else if (lookup) renderLookup();
  else if (draft) renderForm();
  else renderHome();
  if (keypad) renderKeypad();
  touched();
}

function renderHome() {
  show(
    problem ? el("p", { class: "error-text", role: "alert", id: "problem" }, problem) : null,
    ...late().map((l) => el("div", { class: "notice late", role: "status" },
      el("p", {}, `${l.incident.report.building}${t("late_banner")}`, el("strong", { class: "late-ticket" }, l.incident.ticket)),
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => claimLate(l) }, t("print")),
        el("button", { type: "button", onclick: () => { saveLate(late().filter((x) => x.incident.id !== l.incident.id)); render(); } }, t("dismiss"))))),
    el("h2", {}, t("choose")),
    el("div", { class: "categories" }, hello.community.categories.filter((c) => !c.retired).map((c) =>
      el("button", { type: "button", dataset: { category: c.id }, onclick: () => start(c) },
        el("span", { class: "icon", "aria-hidden": "true" }, c.icon), categoryName(c)))),
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
  openKeypad("phone_tail", t("by_phone_tail"), "", 4, (typed) => {
    if (typed === tail) open(l.key);
    else { problem = t("wrong_key"); render(); }
  });
}

function start(category) {
  draft = { request_id: requestId(), category, urgency: "normal", phrases: [], building: "", unit: "", room: "", description: "", phone: "", attachments: [] };
  problem = "";
  render();
}

function toggle(list, value) {
  return list.includes(value) ? list.filter((v) => v !== value) : [...list, value];
}

function choice(label, pressed, onclick, attrs = {}) {
  return el("button", { type: "button", class: "choice", "aria-pressed": String(pressed), onclick, ...attrs }, label);
}

function renderForm() {
  const c = draft.category;
  const compound = thisCompound();
  const buildings = [...(compound?.buildings ?? []).map((b) => b.name), t("public_area")];
  const units = compound?.buildings?.find((b) => b.name === draft.building)?.units ?? [];
  const offline = pending().some((p) => p.request_id === draft.request_id);
  const redraw = (change) => () => { change(); problem = ""; render(); };
  show(
    el("h2", {}, el("span", { "aria-hidden": "true" }, c.icon, " "), categoryName(c)),
    c.emergency ? el("section", { class: "emergency", "aria-labelledby": "emergency-title" },
      el("h3", { id: "emergency-title" }, t("emergency_title")),
      el("p", { class: "numbers" },
        el("span", {}, `${t("emergency_police")} `, el("strong", {}, "110")),
        el("span", {}, `${t("emergency_fire")} `, el("strong", {}, "119")),
        el("span", {}, `${t("emergency_ambulance")} `, el("strong", {}, "120"))),
      el("p", {}, t("emergency_note"))) : null,
    el("form", { class: "kiosk-form", onsubmit: (e) => { e.preventDefault(); submit(); } },
      el("fieldset", { class: "phrases" },
        el("legend", {}, t("what_happened")),
        el("div", { class: "choices" },
          (c.phrases ?? []).map((p) => choice(p, draft.phrases.includes(p), redraw(() => { draft.phrases = toggle(draft.phrases, p); }), { dataset: { phrase: p } })),
          choice(t("contact_me"), draft.phrases.includes(t("contact_me")), redraw(() => { draft.phrases = toggle(draft.phrases, t("contact_me")); }), { id: "contact-me" }),
          choice(t("visit_me"), draft.phrases.includes(t("visit_me")), redraw(() => { draft.phrases = toggle(draft.phrases, t("visit_me")); }), { id: "visit-me" }))),
      el("fieldset", { class: "media" },
        el("legend", {}, t("attach")),
        mediaControls()),
      el("fieldset", { class: "where" },
        el("legend", {}, t("where")),
        el("div", { class: "choices" }, buildings.map((b) => choice(b, draft.building === b, redraw(() => { draft.building = draft.building === b ? "" : b; draft.unit = ""; }), { dataset: { building: b } }))),
        units.length ? el("div", { class: "choices units", role: "group", "aria-label": t("unit") }, units.map((u) => choice(u, draft.unit === u, redraw(() => { draft.unit = draft.unit === u ? "" : u; }), { dataset: { unit: u } }))) : null,
        el("div", { class: "choices" },
          keyButton("room", t("room_button"), draft.room, 6),
          keyButton("phone", t("phone_button"), draft.phone, 15))),
      el("fieldset", { class: "urgency-choice" },
        el("legend", {}, t("urgency")),
        el("p", { class: "hint" }, t("urgency_hint")),
        el("div", { class: "urgency" }, ["normal", "urgent"].map((u) =>
          el("button", { type: "button", class: u, id: `urgency-${u}`, "aria-pressed": String(draft.urgency === u), onclick: redraw(() => { draft.urgency = u; }) }, t(u))))),
      el("label", { class: "own-words" }, t("own_words"), (() => {
        const area = el("textarea", { id: "f-description", name: "description", autocomplete: "off", maxlength: 400, oninput: (e) => { draft.description = e.target.value; } });
        area.value = draft.description;
        return area;
      })()),
      offline ? el("p", { class: "notice", role: "status" }, t("saved_offline")) : null,
      problem ? el("p", { class: "error-text", role: "alert", id: "problem" }, problem) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", id: "back", onclick: () => { stopMedia(); draft = null; problem = ""; render(); } }, t("back")),
        el("button", { type: "submit", class: "primary", id: "submit", disabled: draft.sending }, draft.sending ? t("sending") : t("submit"))),
    ),
  );
}

/** A field entered on the keypad, shown as a big button with what was entered. */
function keyButton(field, label, value, max) {
  return el("button", { type: "button", class: "choice keyed", id: `key-${field}`, onclick: () => openKeypad(field, label, value, max, (v) => { draft[field] = v; }) },
    `${label}：`, el("span", { class: "value" }, value || t("not_given")));
}

function openKeypad(field, label, value, max, done) {
  keypad = { field, label, value, max, done };
  render();
}

function renderKeypad() {
  const k = keypad;
  const shown = el("output", { id: "keypad-value", "aria-live": "polite" }, k.value || " ");
  const type = (d) => () => { if (k.value.length < k.max) k.value += d; shown.textContent = k.value || " "; };
  const key = (label, onclick, attrs = {}) => el("button", { type: "button", onclick, ...attrs }, label);
  const dialog = el("div", { class: "overlay", role: "dialog", "aria-modal": "true", "aria-labelledby": "keypad-title", id: "keypad" },
    el("div", { class: "dialog keypad" },
      el("h2", { id: "keypad-title" }, k.label),
      shown,
      el("div", { class: "keys" },
        ["1", "2", "3", "4", "5", "6", "7", "8", "9"].map((d) => key(d, type(d), { dataset: { key: d } })),
        key(t("keypad_clear"), () => { k.value = ""; shown.textContent = " "; }, { dataset: { key: "clear" } }),
        key("0", type("0"), { dataset: { key: "0" } }),
        key(t("keypad_delete"), () => { k.value = k.value.slice(0, -1); shown.textContent = k.value || " "; }, { dataset: { key: "delete" }, "aria-label": t("keypad_delete") })),
      el("div", { class: "actions" },
        key(t("back"), () => { keypad = null; render(); }, { id: "keypad-back" }),
        key(t("keypad_ok"), () => { k.done(k.value); keypad = null; render(); }, { class: "primary", id: "keypad-ok" }))));
  document.body.querySelector("#keypad")?.remove();
  document.body.append(dialog);
  dialog.querySelector("[data-key='1']").focus();
}

function submit() {
  const spoken = draft.attachments.some((a) => a.kind === "voice");
  const said = [...draft.phrases, draft.description.trim()].filter(Boolean).join("；");
  if (!said && !spoken) { problem = t("need_what"); render(); return; }
  if (!draft.building) { problem = t("need_where"); render(); return; }
  const report = {
    compound: hello.identity.compounds[0], category: draft.category.id, urgency: draft.urgency,
    building: draft.building, unit: draft.unit, room: draft.room,
    description: said || t("voice_note"), phone: draft.phone || null,
    attachments: draft.attachments,
  };
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

function statusText(incident) {
  const base = t(`status_${incident.status}`);
  return incident.holder && incident.status !== "reported" ? `${base} · ${t("by")} ${incident.holder.name}` : base;
}

const spacedKey = (key) => key.replace(/(\d{4})(\d{3})(\d{3})/, "$1 $2 $3");
const placeOf = (report) => [report.building, report.unit, report.room].filter(Boolean).join(" ");

function renderTicket() {
  const { incident: i, key } = showing;
  const category = categoryOf(i.report.category);
  const what = category ? `${category.icon} ${categoryName(category)}` : "";
  const qr = el("img", { class: "qr", id: "status-qr", alt: t("scan_to_follow"), hidden: true });
  show(
    el("section", { class: `ticket${key ? " with-qr" : ""}`, "aria-labelledby": "ticket-heading" },
      el("h2", { id: "ticket-heading" }, el("span", { class: "label" }, t("your_ticket")), el("span", { class: "number", id: "ticket" }, i.ticket)),
      el("div", { class: "status", id: "status", dataset: { status: i.status } }, statusText(i)),
      el("p", {}, [what, placeOf(i.report)].filter(Boolean).join(" · ")),
      key ? el("div", { class: "follow" }, qr,
        el("p", {}, t("scan_to_follow")),
        el("p", {}, `${t("slip_code")}：`, el("strong", { id: "slip-code" }, spacedKey(key)))) : null,
      el("p", {}, t("keep_ticket"))),
    i.notices?.length ? el("ul", { class: "notices", "aria-label": t("notices_title") }, i.notices.map((n) => el("li", {}, `${n.by.name}：${n.text}`))) : null,
    i.status === "resolved" && !i.rating && key ? questions(i.id, i.round, (solved, rating) => {
      if (!conn.send({ type: "rate", id: requestNo++, incident: i.id, rating, key, solved })) throw new Error("offline");
    }) : null,
    // Thanks once answered; "handled again" while the second handling runs.
    (i.status === "resolved" && i.rating) || (i.round && i.status !== "resolved") ? thanks(i) : null,
    problem ? el("p", { class: "error-text", role: "alert" }, problem) : null,
    el("div", { class: "actions spaced" },
      key ? el("button", { type: "button", id: "print", onclick: () => window.print() }, `🖨 ${t("print_slip")}`) : null,
      chineseVoice() ? el("button", { type: "button", id: "read-aloud", onclick: () => readAloud(i.ticket) }, `🔊 ${t("read_aloud")}`) : null,
      el("button", { type: "button", class: "primary", id: "done", onclick: () => { showing = null; lookup = null; problem = ""; render(); } }, t("done"))),
    key ? slip(i, what, key, qr) : null,
  );
}

/** The printed slip (a receipt printer's width): shown only when printing. */
/** The status link of the ticket on screen, asked once per ticket (not at every redraw). */
let statusLink = { ticket: null, answer: null };
function linkOf(ticket, key) {
  if (statusLink.ticket !== ticket) {
    const answer = fetch("/api/status/link", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ticket, key, community: hello.identity.community }) })
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null);
    statusLink = { ticket, answer };
  }
  return statusLink.answer;
}

function slip(incident, what, key, screenQr) {
  const qr = el("img", { class: "qr", alt: "" });
  linkOf(incident.ticket, key)
    .then((link) => {
      if (!link) return;
      const src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(link.qr_svg)}`;
      qr.src = src;
      screenQr.src = src;
      screenQr.hidden = false;
      screenQr.dataset.link = link.link;
    });
  return el("section", { class: "slip", id: "slip", "aria-hidden": "true" },
    el("p", { class: "slip-title" }, t("slip_title")),
    el("p", {}, `${t("ticket")}：`, el("strong", { class: "slip-ticket" }, incident.ticket)),
    el("p", {}, `${t("category_label")}：${what}`),
    el("p", {}, `${t("place")}：${placeOf(incident.report)}`),
    el("p", {}, `${t("time_label")}：${formatTime(incident.reported_at)}`),
    qr,
    el("p", {}, t("scan_to_follow")),
    el("p", {}, `${t("slip_code")}：${spacedKey(key)}`));
}

function chineseVoice() {
  return window.speechSynthesis?.getVoices().find((v) => v.lang.startsWith("zh"));
}

function readAloud(ticket) {
  const voice = chineseVoice();
  if (!voice) return;
  const said = new SpeechSynthesisUtterance(`您的受理号是 ${ticket.split("").join(" ")}`);
  said.voice = voice;
  said.lang = voice.lang;
  said.rate = 0.8;
  speechSynthesis.speak(said);
}

// ---- Looking up a ticket: the number and a proof, both on the keypad ----

function renderLookup() {
  const held = (field) => (field === "ticket" ? lookup.ticket : lookup.proof === field ? lookup.value : "");
  const ask = (field, label, max) => () => openKeypad(field, label, held(field), max, (v) => {
    if (field === "ticket") lookup.ticket = v; else { lookup.proof = field; lookup.value = v; }
  });
  const ready = lookup.ticket && lookup.proof && lookup.value;
  show(
    el("h2", {}, t("lookup")),
    el("div", { class: "kiosk-form" },
      el("p", {}, t("lookup_ticket")),
      el("button", { type: "button", class: "choice keyed", id: "lookup-ticket", onclick: ask("ticket", t("ticket"), 8) }, `${t("ticket")}：`, el("span", { class: "value" }, lookup.ticket || t("not_given"))),
      el("p", {}, t("lookup_proof")),
      el("div", { class: "choices" },
        el("button", { type: "button", class: "choice keyed", id: "lookup-phone", "aria-pressed": String(lookup.proof === "phone_tail"), onclick: ask("phone_tail", t("by_phone_tail"), 4) },
          `${t("by_phone_tail")}：`, el("span", { class: "value" }, lookup.proof === "phone_tail" ? lookup.value : t("not_given"))),
        el("button", { type: "button", class: "choice keyed", id: "lookup-key", "aria-pressed": String(lookup.proof === "key"), onclick: ask("key", t("by_key"), 10) },
          `${t("by_key")}：`, el("span", { class: "value" }, lookup.proof === "key" ? lookup.value : t("not_given")))),
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

// Printing shows the slip alone (see `body.printing` in the stylesheet).
window.addEventListener("beforeprint", () => document.body.classList.add("printing"));
window.addEventListener("afterprint", () => document.body.classList.remove("printing"));

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
