// The grid workers' live board, a working tool on a phone held in one hand: open incidents,
// most urgent first, each with the time left in words; views (待接单, 我的, 代办中, 全部), a
// compound filter and a ticket search; only the buttons the server's rule allows (fetched from
// `/api/rules`, derived from that rule); dialogs with quick replies; alerts that reach a worker
// whose page is in the background (a notification, a vibration, the title) and a chime that is
// switched on knowingly rather than silently blocked.

import { Connection, merge, showLink } from "./connection.js";
import { applyI18n, labelled, lang, name, t, toggleLang } from "./i18n.js";
import { el, formatLeft, formatTime, put, toast } from "./format.js";
import { questions, resetAnswers } from "./answer.js";
import {
  categoryTiles, closeKeypad, inPlace, keyButton, missing, newDraft, phrasesPicker, placePicker, reportOf, urgencyPicker,
} from "./pickers.js";
import { ticketView } from "./slip.js";

/** A target is "near" once this share of it has passed. */
const NEAR = 0.75;
const VIEWS = ["unclaimed", "mine", "handed_over", "all"];
/** Who calls residents back (回访) has one more view: resolutions nobody has answered. */
const CALLERS = ["supervisor", "building_head"];
function views() {
  const role = hello?.identity.role;
  // A building head holds nothing: their buildings, everything, and whom to call back.
  if (role === "building_head") return ["buildings", "all", "callbacks"];
  return CALLERS.includes(role) ? [...VIEWS, "callbacks"] : VIEWS;
}

let hello = null;
let rules = [];              // what each role may do: `GET /api/rules`
let workers = [];            // a supervisor's workers, for 派单
let heads = [];              // the building heads a dispute may be handed to (调解)
const open = new Map();      // incident id → incident
const closed = new Map();    // incidents seen closed since the page opened (one may be reopened)
const fresh = new Set();     // ids to highlight
const phones = new Map();    // incident id → phone number the server revealed to this worker
let nextId = 1;
let onDuty = [];             // the roster: who is on duty now, by rota or by hand
let view = localStorage.getItem("hongfan.board.view") ?? "all";
let compoundFilter = "";
let search = "";
let unseen = 0;              // alerts that came while the page was not looked at
let skew = 0;                // the server's clock minus this device's: timers run on the server's
let currentAsk = null;       // the dialog open now (an upload finishing later belongs to it or to none)
let callbacks = null;        // the 回访 list, `GET /api/callbacks`, when this viewer has one

/** Now, on the server's clock. */
function now() { return Date.now() + skew; }

const conn = new Connection({
  onState: showLink,
  onHello(msg) {
    hello = msg;
    if (msg.now) skew = msg.now - Date.now();
    document.getElementById("who").textContent = msg.identity.name;
    document.getElementById("duty-box").hidden = msg.identity.role !== "worker";
    document.getElementById("admin-link").hidden = msg.identity.role !== "supervisor";
    renderFilters();
    renderDuty();
    if (msg.identity.role === "supervisor") loadWorkers();
    if (CALLERS.includes(msg.identity.role)) loadCallbacks();
    if (["worker", "supervisor"].includes(msg.identity.role)) {
      fetch("/api/building-heads").then((r) => (r.ok ? r.json() : [])).then((list) => { heads = list; }).catch(() => {});
    }
    document.getElementById("head-tools").hidden = msg.identity.role !== "building_head";
  },
  onCommunity(community) {
    if (hello) hello.community = community;
    render();
  },
  onMessage(msg) {
    switch (msg.type) {
      case "snapshot":
        open.clear();
        for (const i of msg.incidents) open.set(i.id, i);
        break;
      case "event": {
        // A live event happened at the server's now: a device whose clock drifted, or a server
        // whose clock moved, is caught up (an old event, replayed on resume, changes nothing).
        skew = Math.max(skew, msg.event.at - Date.now());
        const held = open.get(msg.event.incident) ?? closed.get(msg.event.incident);
        if (!held && !("id" in msg.patch)) {
          // A change to an incident this page never held: the patch alone is not a card. One
          // that opens it again (a resolution on the 回访 list not solved, say) is asked for whole.
          const change = msg.event.change;
          if ((change.type === "rated" && change.again) || change.type === "reopened") {
            conn.send({ type: "lookup", id: nextId++, incident: msg.event.incident });
          }
          offTheCallbackList(msg.event);
          break;
        }
        const incident = merge(held, msg.patch);
        if (isOpen(incident)) {
          open.set(incident.id, incident);
          closed.delete(incident.id);
        } else {
          open.delete(incident.id);
          closed.set(incident.id, incident);
        }
        offTheCallbackList(msg.event);
        // A pause asked for waits for a supervisor: they are told.
        if (msg.event.change.type === "pause_asked" && hello?.identity.role === "supervisor") {
          toast(`${incident.ticket ?? ""} · ${msg.event.actor.name} ${t("pause_asked")}：${msg.event.change.reason}`);
        }
        // So does a 退单 asked for; the holder hears the supervisor keep it.
        if (msg.event.change.type === "send_back_asked" && hello?.identity.role === "supervisor") {
          toast(`${incident.ticket ?? ""} · ${msg.event.actor.name} ${t("send_back")}：${msg.event.change.reason}`);
        }
        if (msg.event.change.type === "send_back_refused" && incident.holder?.id === hello?.identity.id) {
          toast(`${incident.ticket ?? ""} · ${msg.event.actor.name} ${t("refuse_send_back")}：${msg.event.change.reason}`);
        }
        // 督办 reaches the one who holds it (or, unclaimed, everyone who could take it).
        if (msg.event.change.type === "urged" && (incident.holder?.id === hello?.identity.id || (!incident.holder && hello?.identity.role === "worker"))) {
          const note = msg.event.change.note ? `：${msg.event.change.note}` : "";
          toast(`${t("urged_by")} ${msg.event.actor.name} · ${incident.ticket}${note}`);
          alertWorker(incident, t("urged_by"));
        }
        break;
      }
      case "alert":
        fresh.add(msg.incident.id);
        setTimeout(() => { fresh.delete(msg.incident.id); render(); }, 10_000);
        alertWorker(msg.incident, msg.incident.holder?.id === hello?.identity.id ? t("assigned_to_you") : t("new_report"));
        break;
      case "roster":
        onDuty = msg.on_duty;
        renderRoster();
        renderDuty();
        return;
      case "reported":
        // A 代报 of this building head: its slip, to hand to the resident.
        if (proxy?.step === "form" && msg.request_id === proxy.draft.request_id) {
          proxy = { ...proxy, step: "slip", sending: false, incident: msg.incident, key: msg.key };
          drawProxy(true);
        }
        return;
      case "found":
        // The whole of an incident asked for above.
        if (isOpen(msg.incident)) open.set(msg.incident.id, msg.incident);
        else closed.set(msg.incident.id, msg.incident);
        break;
      case "revealed":
        phones.set(msg.incident, msg.phone);
        break;
      case "duty_set":
        // The roster that follows says what it changed.
        return;
      case "error":
        if (proxy?.draft && msg.request_id === proxy.draft.request_id) {
          proxy = { ...proxy, sending: false, problem: msg.message_zh, needed: null };
          drawProxy();
          return;
        }
        // Refused: nothing on screen had changed, so nothing rolls back; say why.
        toast(msg.holder ? `${msg.message_zh}（${msg.holder.name}）` : msg.message_zh);
        // An answer refused (already given meanwhile, say) may be given again after a look.
        resetAnswers();
        if (view === "callbacks") loadCallbacks();
        renderDuty();
        return;
      default:
        return;
    }
    render();
  },
  onUnauthorized() { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; },
});

/** Answered (at the kiosk, on the status page, or by this 回访): off the 回访 list. */
function offTheCallbackList(event) {
  const answered = callbacks?.find((c) => c.id === event.incident);
  if (event.change.type !== "rated" || !answered) return;
  callbacks = callbacks.filter((c) => c !== answered);
  if (event.actor.id === hello?.identity.id) toast(`${answered.ticket} · ${t(event.change.solved ? "thanks" : "second_handling_started")}`);
}

function isOpen(i) { return ["reported", "claimed", "handed_over"].includes(i.status); }

function category(i) { return hello?.community.categories.find((c) => c.id === i.report.category); }

/** The timer that matters now: its deadline, how far along, and what it is for. */
function timing(i, now) {
  const responding = i.status === "reported";
  const deadline = responding ? i.respond_by : i.resolve_by;
  const target = category(i)?.targets[i.report.urgency] ?? { respond: 1, resolve: 1 };
  const start = responding ? i.reported_at : Math.max(i.reported_at, i.resolve_by - target.resolve);
  const share = (now - start) / Math.max(1, deadline - start);
  const level = now >= deadline ? "late" : share >= NEAR ? "near" : "ok";
  return { deadline, level, responding };
}

const LEVEL_ICON = { ok: "⏳", near: "⚠️", late: "⛔" };

/** "接单剩余 12分" / "办结已超时 3分20秒", with an icon: never colour alone. */
function timeLeft(i, now) {
  // An approved pause stops the resolution clock: no time runs out meanwhile.
  if (i.pause?.approved && !i.pause.to && i.status !== "reported") {
    return { level: "ok", text: `⏸ ${t("paused_clock")}`, deadline: i.pause.until };
  }
  const { deadline, level, responding } = timing(i, now);
  const what = t(responding ? "left_respond" : "left_resolve");
  const text = now >= deadline
    ? `${what}${t("overdue")} ${formatLeft(now - deadline, lang())}`
    : `${what}${t("remaining")} ${formatLeft(deadline - now, lang())}`;
  return { level, text: `${LEVEL_ICON[level]} ${text}${level === "near" ? `（${t("near")}）` : ""}`, deadline };
}

/**
 * Most urgent first: urgent reports, then what is late, then what nobody has taken yet (it
 * needs someone now; a claimed card near its target has someone), then what is near its
 * target, then the rest; within each, the earliest deadline first.
 */
function rank(i, timed) {
  if (timed.level === "late") return 0;
  if (i.status === "reported") return 1;
  return timed.level === "near" ? 2 : 3;
}
function byUrgency(now) {
  return (a, b) => {
    const ta = timing(a, now), tb = timing(b, now);
    return (b.report.urgency === "urgent") - (a.report.urgency === "urgent")
      || rank(a, ta) - rank(b, tb)
      || ta.deadline - tb.deadline;
  };
}

/** Which view an incident belongs to, for this viewer. */
function inView(i, which) {
  const me = hello.identity.id;
  switch (which) {
    case "unclaimed": return i.status === "reported";
    case "mine": return i.holder?.id === me && i.status !== "reported";
    case "handed_over": return i.status === "handed_over";
    // A building head follows their own buildings.
    case "buildings": return (hello.identity.buildings ?? []).includes(i.report.building);
    default: return true;
  }
}

function filtered() {
  return [...open.values()].filter((i) =>
    (!compoundFilter || i.report.compound === compoundFilter)
    && (!search || i.ticket.includes(search.replace(/\D/g, ""))));
}

// ---- What this viewer may do: the server's rule, as `/api/rules` derives it ----

function allowed(i) {
  const me = hello.identity.id;
  const holder = !i.holder ? "none" : i.holder.id === me ? "me" : "other";
  const pause = !i.pause ? "none" : i.pause.approved ? "running" : "asked";
  const running = i.mediation && !i.mediation.ended ? i.mediation : null;
  const mediation = !running ? "none" : running.head.id === me ? "mine" : "other";
  const order = !i.report.order ? "none" : i.send_back ? "send_back_asked" : "order";
  const c = category(i);
  const rule = rules.find((r) => r.role === hello.identity.role && r.status === i.status && r.holder === holder
    && r.private === !!c?.private && r.mediable === (!c?.private && !!c?.mediation) && r.pause === pause && r.mediation === mediation
    && r.order === order);
  return rule?.actions ?? [];
}

const TEXT_FIELD = { end_mediation: "outcome", tell: "text", note: "text", hand_over: "note", return: "note", resolve: "outcome", reopen: "reason", cancel: "reason", urge: "note", pause: "reason", send_back: "reason", refuse_send_back: "reason" };

/** Sends a request; false (and a toast) when the link is down. */
function send(body) {
  const sent = conn.send({ id: nextId++, ...body });
  if (!sent) toast(t("offline"));
  return sent;
}

/** The dialog of one action: quick replies, a text, a clear confirm button; for one hand. */
function ask(type, incident, extra = {}) {
  const dialog = document.getElementById("ask");
  const text = document.getElementById("ask-text");
  const error = document.getElementById("ask-error");
  // 派单 picks a worker, 调解 a building head (theirs first: who lives by the dispute).
  const assigning = type === "assign" || type === "mediate";
  let proof = null;
  const proofBox = document.getElementById("ask-proof-box");
  const proofInput = document.getElementById("ask-proof");
  const proofState = document.getElementById("ask-proof-state");
  proofBox.hidden = type !== "resolve";
  proofInput.value = "";
  proofState.textContent = "";
  const ok = document.getElementById("ask-ok");
  ok.disabled = false;
  const asked = Symbol("this dialog");
  currentAsk = asked;
  proofInput.onchange = async () => {
    const file = proofInput.files?.[0];
    if (!file) return;
    proofState.textContent = t("sending");
    // Not resolved without the photo the worker is waiting to see saved.
    ok.disabled = true;
    const stored = await uploadPhoto(file).catch(() => null);
    if (currentAsk !== asked) return; // a dialog closed meanwhile
    proof = stored;
    ok.disabled = false;
    proofState.textContent = proof ? `✓ ${t("photo_saved")}` : t("attach_failed");
  };
  const label = extra.label ?? type;
  document.getElementById("ask-title").textContent = `${incident.ticket} · ${t(label)}`;
  document.getElementById("ask-help").textContent = extra.help ?? (type === "cancel" ? t("cancel_warning") : "");
  // The prompt and confirm button's words: the type's, or those of a variant of it.
  const words = extra.words ?? type;
  document.getElementById("ask-label").textContent = t(`${words}_prompt`);
  document.getElementById("ask-text-label").hidden = assigning;
  document.getElementById("ask-worker-label").hidden = !assigning;
  document.querySelector("#ask-worker-label span").dataset.i18n = type === "mediate" ? "mediate_prompt" : "assign_to";
  document.getElementById("ask-ok").textContent = t(`confirm_${words}`);
  error.textContent = "";
  text.value = "";
  // 挂起 takes one of the configured reasons, chosen with a tap; other texts may add up.
  const pausing = type === "pause";
  const replies = assigning ? [] : pausing ? hello.community.pauses?.reasons ?? [] : hello.community.quick_replies?.[type] ?? [];
  document.getElementById("ask-quick").setAttribute("aria-label", t(pausing ? "pause_reasons" : "quick_replies"));
  document.getElementById("ask-quick").replaceChildren(...replies.map((r) =>
    el("button", { type: "button", class: "chip", onclick: () => { text.value = pausing || !text.value ? r : `${text.value}；${r}`; text.focus(); } }, r)));
  text.readOnly = pausing;
  if (assigning) {
    const building = incident.report.building;
    const choices = type === "mediate"
      ? heads.filter((h) => h.compounds.includes(incident.report.compound)).sort((a, b) => b.buildings.includes(building) - a.buildings.includes(building))
      : workers.filter((w) => w.compounds.includes(incident.report.compound) && w.id !== incident.holder?.id);
    document.getElementById("ask-worker").replaceChildren(...choices.map((w) => el("option", { value: w.id }, w.name)));
  }
  const form = document.getElementById("ask-form");
  form.onsubmit = (e) => {
    e.preventDefault();
    if (assigning) {
      const worker = document.getElementById("ask-worker").value;
      if (!worker) { error.textContent = t("nobody"); return; }
      send({ type, incident: incident.id, [type === "mediate" ? "head" : "worker"]: worker });
    } else {
      const value = text.value.trim();
      // Our own words, in the chosen language (not the browser's validation bubble).
      if (!value) { error.textContent = t("need_text"); text.focus(); return; }
      send({ type, incident: incident.id, [TEXT_FIELD[type]]: value, ...(proof ? { proof } : {}), ...(extra.body ?? {}) });
    }
    currentAsk = null;
    dialog.close();
  };
  applyI18n(dialog);
  dialog.showModal();
  (assigning ? document.getElementById("ask-worker") : replies.length ? dialog.querySelector(".chip") : text).focus();
}
document.getElementById("ask-cancel").addEventListener("click", () => { currentAsk = null; document.getElementById("ask").close(); });

function buttons(i) {
  const may = allowed(i);
  const b = (type, primary) => el("button", { type: "button", class: primary ? "primary" : "", dataset: { action: type }, onclick: () => (type === "claim" ? send({ type, incident: i.id }) : ask(type, i)) }, t(type));
  const direct = (type, body, label, primary) => el("button", { type: "button", class: primary ? "primary" : "", dataset: { action: label }, onclick: () => send({ type, incident: i.id, ...body }) }, t(label));
  const main = [["claim", true], ["resolve", true], ["hand_over"], ["return"], ["note"], ["tell"], ["assign"], ["urge"], ["pause"]]
    .filter(([type]) => may.includes(type))
    .map(([type, primary]) => b(type, primary));
  if (may.includes("decide_pause")) main.unshift(direct("decide_pause", { approve: true }, "approve_pause", true), direct("decide_pause", { approve: false }, "refuse_pause"));
  if (may.includes("resume")) main.push(direct("resume", {}, "resume"));
  // 退单: a supervisor decides on the holder's asking, or sends an order back at once.
  if (may.includes("refuse_send_back")) {
    const asked = i.send_back.reason ? `${i.send_back.asked_by.name}：${i.send_back.reason}` : i.send_back.asked_by.name;
    main.unshift(
      el("button", { type: "button", class: "primary", dataset: { action: "approve_send_back" }, onclick: () => ask("send_back", i, { label: "approve_send_back", words: "send_back_now", help: asked }) }, t("approve_send_back")),
      b("refuse_send_back"));
  }
  if (may.includes("mediate")) main.push(b("mediate"));
  if (may.includes("end_mediation")) {
    const end = (label, settled) => el("button", { type: "button", dataset: { action: label }, onclick: () => ask("end_mediation", i, { label, body: { settled } }) }, t(label));
    // The mediating building head says how it went; the holder may take it back.
    if (i.mediation?.head.id === hello.identity.id) main.unshift(end("mediation_settled", true), end("mediation_failed", false));
    else main.push(end("mediation_take_back", false));
  }
  // 撤销 (withdrawing the report) and 退单 are not beside 取消-like buttons: they wait under 更多.
  const sendBack = may.includes("send_back") && !may.includes("refuse_send_back")
    ? el("button", { type: "button", dataset: { action: hello.identity.role === "supervisor" ? "send_back_now" : "send_back" },
      onclick: () => ask("send_back", i, hello.identity.role === "supervisor" ? { label: "send_back_now", words: "send_back_now" } : {}) },
    t(hello.identity.role === "supervisor" ? "send_back_now" : "send_back"))
    : null;
  const more = may.includes("cancel") || sendBack
    ? el("details", { class: "more" }, el("summary", {}, t("more_actions")), sendBack, may.includes("cancel") ? b("cancel") : null)
    : null;
  return [...main, more];
}

function reveal(i) { send({ type: "reveal", incident: i.id }); }

/**
 * A photo of the result (影像证明): scaled to at most 1600 px and encoded afresh as JPEG, so
 * that the phone's metadata never leaves it (the server strips what is left), then stored.
 */
async function uploadPhoto(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  const canvas = el("canvas", { width: Math.round(bitmap.width * scale), height: Math.round(bitmap.height * scale) });
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.85));
  const r = await fetch("/api/attachments", { method: "POST", body: blob });
  if (!r.ok) throw new Error("upload");
  return r.json();
}

/** The resident's photo and voice note, for those who may see the description. */
function attachments(i) {
  const list = i.report.attachments ?? [];
  if (!list.length) return null;
  const src = (a) => `/api/incidents/${i.id}/attachments/${a.id}`;
  return el("div", { class: "attachments", role: "group", "aria-label": t("attachments") }, list.map((a) => a.kind === "photo"
    ? el("a", { href: src(a), target: "_blank", rel: "noopener" }, el("img", { src: src(a), alt: `${t("photo_note")} ${i.ticket}`, loading: "lazy" }))
    : el("audio", { controls: true, preload: "none", src: src(a), "aria-label": `${t("voice_note")} ${i.ticket}` })));
}

/** The server sends the number masked; asking for it is logged, and the answer is a call link. */
function phoneOf(i) {
  if (!i.report.phone) return null;
  if (phones.has(i.id)) return el("a", { class: "phone", href: `tel:${phones.get(i.id).replace(/[^\d+]/g, "")}` }, `📞 ${t("call")} ${phones.get(i.id)}`);
  return allowed(i).includes("reveal")
    ? el("button", { type: "button", class: "reveal", onclick: () => reveal(i) }, `📞 ${i.report.phone} · ${t("show_phone")}`)
    : el("span", {}, i.report.phone);
}

function placeOf(i) {
  const compound = hello.community.compounds.find((x) => x.id === i.report.compound);
  return `${compound ? compound.name : i.report.compound} ${[i.report.building, i.report.unit, i.report.room].filter(Boolean).join(" ")}`;
}

function top(i) {
  const c = category(i);
  return el("div", { class: "top" },
    el("span", { class: "ticket-no" }, i.ticket),
    i.report.urgency === "urgent" ? el("span", { class: "urgent-tag" }, t("urgent")) : null,
    i.round ? el("span", { class: "round-tag" }, t("second_handling")) : null,
    el("span", {}, c ? `${c.icon} ${name(c.name, c.name_en)}` : i.report.category));
}

/** 调解: who mediates and by when, or what came of it. */
function mediationLine(i) {
  const m = i.mediation;
  if (!m) return null;
  const text = m.ended
    ? `⚖️ ${t("mediation_result")}（${m.head.name}）：${m.outcome ?? ""}${m.settled ? ` · ${t("settled")}` : ""}`
    : `⚖️ ${t("mediating")}：${m.head.name} · ${t("deadline")} ${formatTime(m.due)}${m.breached ? ` · ⛔ ${t("late")}` : ""}`;
  return el("div", { class: "mediation-line", dataset: { mediation: m.ended ? "ended" : "running" } }, text);
}

/** 每月一题: a problem reported again at the same building; a supervisor opens the earlier ones. */
function recurringLine(i) {
  if (!i.recurring?.length) return null;
  const ticket = (id) => String(id).padStart(4, "0");
  const earlier = i.recurring.map((id) => (hello.identity.role === "supervisor"
    ? el("a", { href: `/audit#incident=${id}` }, ticket(id))
    : el("span", {}, ticket(id))));
  return el("div", { class: "recurring-line" }, `🔁 ${labelled(t("recurring").replace("{n}", i.recurring.length + 1))}`,
    earlier.flatMap((e, n) => (n ? [lang() === "zh" ? "、" : ", ", e] : [e])));
}

function card(i, now) {
  const c = category(i);
  const left = timeLeft(i, now);
  const phone = phoneOf(i);
  const restricted = c?.private && !i.report.description;
  return el("li", { class: `card${fresh.has(i.id) ? " fresh" : ""}`, id: `incident-${i.id}`, dataset: { level: left.level, status: i.status, ticket: i.ticket } },
    top(i),
    el("div", { class: "timer", dataset: { level: left.level } }, left.text),
    el("div", { class: "deadline" }, `${t("deadline")} ${formatTime(left.deadline)}`),
    el("div", { class: "status" }, t(`status_${i.status}`), i.holder && i.status !== "reported" ? ` · ${i.holder.name}` : "",
      i.escalated ? ` · ${t("escalated")}` : "", i.urges ? el("span", { class: "urged" }, ` · ${t("urged")} ${i.urges}`) : null),
    i.pause ? el("div", { class: "pause-line", dataset: { pause: i.pause.approved ? "running" : "asked" } },
      i.pause.approved
        ? `⏸ ${t("paused")}：${i.pause.reason} · ${t("approved_by")} ${i.pause.decided_by?.name ?? ""} · ${t("until")} ${formatTime(i.pause.until)}`
        : `⏸ ${t("pause_asked")}：${i.pause.reason}（${i.pause.asked_by.name}，${t("waiting_approval")}）`) : null,
    i.send_back ? el("div", { class: "pause-line send-back-line" },
      `↩ ${t("send_back")}${i.send_back.reason ? `：${i.send_back.reason}` : ""}（${i.send_back.asked_by.name}，${t("waiting_approval")}）`) : null,
    recurringLine(i),
    mediationLine(i),
    el("div", { class: "meta" }, `${placeOf(i)} · ${t("reported_at")} ${formatTime(i.reported_at)}`,
      i.reported_by?.role === "building_head" ? el("span", { class: "via-head" }, ` · ${t("via_head")}：${i.reported_by.name}`) : null,
      i.reported_by?.role === "platform" && !i.report.order ? el("span", { class: "via-head via-platform" }, ` · ${t("via_platform")}：${i.reported_by.name}`) : null,
      i.report.order ? el("span", { class: "via-head work-order" }, ` · ${t(`order_${i.report.order.source}`)} ${i.report.order.external_id}`) : null),
    el("div", { class: "desc" }, restricted ? t("private_case") : i.report.description),
    attachments(i),
    phone,
    i.notices?.length ? el("details", { class: "notes" }, el("summary", {}, `${t("tell")} (${i.notices.length})`), el("ul", {}, i.notices.map((n) => el("li", {}, `${formatTime(n.at)} ${n.by.name}: ${n.text}`)))) : null,
    i.notes.length ? el("details", { class: "notes" }, el("summary", {}, `${t("note")} (${i.notes.length})`), el("ul", {}, i.notes.map((n) => el("li", {}, `${formatTime(n.at)} ${n.by.name}: ${n.text}`)))) : null,
    el("div", { class: "buttons" }, buttons(i)),
  );
}

/** A resolution nobody has answered: the caller asks 解决了吗？满意吗？ and records it (回访). */
function callbackCard(i) {
  const c = category(i);
  const restricted = c?.private && !i.report.description;
  return el("li", { class: "card", id: `callback-${i.id}`, dataset: { status: i.status, ticket: i.ticket } },
    top(i),
    el("div", { class: "meta" }, `${placeOf(i)} · ${t("status_resolved")} ${formatTime(i.resolved_at)}${i.holder ? ` · ${i.holder.name}` : ""}`),
    el("div", { class: "desc" }, restricted ? t("private_case") : i.report.description),
    i.outcome ? el("div", { class: "outcome" }, `${t("outcome")}：${i.outcome}`) : null,
    phoneOf(i),
    questions(i.id, i.round, async (solved, rating) => {
      if (!send({ type: "rate", incident: i.id, rating, solved })) throw new Error("offline");
    }));
}

async function loadCallbacks() {
  const r = await fetch("/api/callbacks").catch(() => null);
  if (!r?.ok) return;
  callbacks = await r.json();
  render();
}

function renderFilters() {
  if (!hello) return;
  const all = filtered();
  const count = (v) => (v === "callbacks" ? callbacks?.length ?? 0 : all.filter((i) => inView(i, v)).length);
  if (!views().includes(view)) view = "all";
  document.getElementById("tabs").replaceChildren(...views().map((v) =>
    el("button", { type: "button", id: `view-${v}`, "aria-pressed": String(view === v), onclick: () => { view = v; localStorage.setItem("hongfan.board.view", v); if (v === "callbacks") loadCallbacks(); render(); } },
      `${t(`view_${v}`)} `, el("span", { class: "count" }, String(count(v))))));
  const compounds = hello.community.compounds.filter((c) => hello.identity.compounds.includes(c.id));
  const box = document.getElementById("compound-box");
  box.hidden = compounds.length < 2;
  const select = document.getElementById("compound");
  select.replaceChildren(el("option", { value: "" }, t("all")), ...compounds.map((c) => el("option", { value: c.id }, c.name)));
  select.value = compoundFilter;
}

function render() {
  applyI18n();
  if (!hello) return;
  const at = now();
  renderFilters();
  const calling = view === "callbacks";
  const list = calling
    ? (callbacks ?? []).filter((i) => (!compoundFilter || i.report.compound === compoundFilter) && (!search || i.ticket.includes(search.replace(/\D/g, ""))))
    : filtered().filter((i) => inView(i, view)).sort(byUrgency(at));
  document.getElementById("incidents").replaceChildren(...list.map((i) => (calling ? callbackCard(i) : card(i, at))));
  const empty = document.getElementById("empty");
  empty.hidden = list.length > 0;
  empty.textContent = t(calling ? "no_callbacks" : open.size ? "none_in_view" : "no_open");
  renderDuty();
  renderAlerting();
}

/** The time left is redrawn every second; it shows seconds only when they matter. */
setInterval(() => {
  if (!hello) return;
  const at = now();
  for (const li of document.querySelectorAll(".card")) {
    const incident = open.get(Number(li.id.replace("incident-", "")));
    if (!incident) continue;
    const left = timeLeft(incident, at);
    li.dataset.level = left.level;
    const timer = li.querySelector(".timer");
    if (timer.textContent !== left.text) { timer.textContent = left.text; timer.dataset.level = left.level; }
  }
}, 1000);

// ---- Duty ----

/** This worker's line in the roster, if on duty. */
function mine() { return onDuty.find((d) => d.worker.id === hello?.identity.id); }

/** The state in words beside a button that says what it will do. */
function renderDuty() {
  const me = mine();
  const button = document.getElementById("duty");
  button.dataset.on = String(Boolean(me));
  button.textContent = t(me ? "go_off_duty" : "go_on_duty");
  document.getElementById("duty-state").textContent = me
    ? `${labelled(t("duty"))}${t("on_duty")} ${lang() === "zh" ? `（${t(me.manual ? "by_hand" : "by_rota")}）` : `(${t(me.manual ? "by_hand" : "by_rota")})`}`
    : `${labelled(t("duty"))}${t("off_duty")}`;
}

function renderRoster() {
  const zh = lang() === "zh";
  const who = (d) => d.worker.name + (d.manual ? (zh ? `（${t("by_hand")}）` : ` (${t("by_hand")})`) : "");
  document.getElementById("roster").textContent = labelled(t("on_duty"))
    + (onDuty.length ? onDuty.map(who).join(zh ? "、" : ", ") : t("nobody"));
}

document.getElementById("duty").addEventListener("click", () => send({ type: "duty", on: !mine() }));
document.getElementById("compound").addEventListener("change", (e) => { compoundFilter = e.target.value; render(); });
document.getElementById("search").addEventListener("input", (e) => { search = e.target.value; render(); });
document.getElementById("lang").addEventListener("click", () => toggleLang(() => {
  showLink();
  renderRoster();
  if (proxy) drawProxy();
  render();
}));
document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST" });
  location.href = "/login";
});

async function loadWorkers() {
  const r = await fetch("/api/workers").catch(() => null);
  if (r?.ok) workers = await r.json();
}

// ---- Alerts: a chime switched on knowingly, a notification and a vibration in the background,
// the count in the title ----

let audio;

/** Whether the chime can sound now (browsers keep sound off until the page is touched). */
function soundOn() { return audio?.state === "running"; }

function renderAlerting() {
  const sound = document.getElementById("sound");
  sound.hidden = false;
  sound.textContent = soundOn() ? `🔔 ${t("sound_on")}` : `🔕 ${t("turn_sound_on")}`;
  sound.dataset.on = String(soundOn());
  const notify = document.getElementById("notify");
  notify.hidden = !("Notification" in window) || Notification.permission !== "default";
  notify.textContent = `📣 ${t("turn_notifications_on")}`;
}

document.getElementById("sound").addEventListener("click", async () => {
  try {
    audio ??= new AudioContext();
    await audio.resume();
    chime();
  } catch { /* no sound device: the highlight and notifications still show */ }
  renderAlerting();
});
document.getElementById("notify").addEventListener("click", async () => {
  await Notification.requestPermission().catch(() => {});
  renderAlerting();
});

function alertWorker(incident, why) {
  chime();
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  unseen += 1;
  document.title = `(${unseen}) ${t("new_report")} · ${t("app")}`;
  navigator.vibrate?.([300, 150, 300]);
  if ("Notification" in window && Notification.permission === "granted") {
    const c = category(incident);
    // A lock screen is a shared screen: what and where, never the resident's words.
    new Notification(`${why} · ${incident.ticket}`, {
      body: `${c ? name(c.name, c.name_en) : ""} ${incident.report.building ?? ""}`.trim(),
      tag: `incident-${incident.id}`,
      lang: lang() === "zh" ? "zh-CN" : "en",
    });
  }
}

function seen() {
  if (document.visibilityState !== "visible") return;
  unseen = 0;
  document.title = `${t("app")} · ${t("board")}`;
}
document.addEventListener("visibilitychange", seen);
window.addEventListener("focus", seen);

/** A short two-tone chime, made on the spot (no sound file to ship). */
function chime() {
  if (!soundOn()) return;
  for (const [freq, at] of [[880, 0], [660, 0.18]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.2, audio.currentTime + at);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + at + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(audio.currentTime + at);
    osc.stop(audio.currentTime + at + 0.3);
  }
}

// ---- The building head's own work: 代报 and 巡防 ----

/**
 * 代报 under way: a report for a resident who cannot come or type, with the kiosk's own pickers
 * (`pickers.js`: category tiles, phrases, building and unit, the keypad, urgency) and, once
 * stored, the kiosk's own ticket and slip (`slip.js`) to hand over: the number, the 查询码 and
 * its QR code, printable. `{ step: "category" | "form" | "slip", prefill, draft, problem,
 * needed, sending, incident, key }`.
 */
let proxy = null;

/** The buildings a building head may report in: every one of their compounds, theirs marked. */
function proxyPlaces() {
  const id = hello.identity;
  const mine = new Set(id.buildings ?? []);
  return hello.community.compounds.filter((c) => id.compounds.includes(c.id))
    .map((compound) => ({ compound, buildings: compound.buildings.map((b) => ({ ...b, mine: mine.has(b.name) })) }));
}

function openProxy(prefill = {}) {
  proxy = { step: "category", prefill, problem: "", needed: null };
  const dialog = document.getElementById("proxy");
  drawProxy(true);
  if (!dialog.open) dialog.showModal();
  dialog.querySelector("button")?.focus();
}

function closeProxy() {
  proxy = null;
  closeKeypad();
  document.getElementById("slip")?.remove();
  document.getElementById("proxy").close();
}

/** Applies a change to the 代报's draft and draws it again, in place. */
function proxyChange(apply) {
  apply();
  if (proxy.problem) { proxy.problem = ""; proxy.needed = null; }
  drawProxy();
}

/** Draws the 代报 dialog: in place, or (`fresh`, a new step) from its top. */
function drawProxy(fresh = false) {
  const dialog = document.getElementById("proxy");
  if (fresh) {
    put(dialog, proxyScreen());
    dialog.scrollTop = 0;
    dialog.querySelector("button")?.focus();
  } else {
    inPlace(dialog, () => put(dialog, proxyScreen()));
  }
}

function pickProxyCategory(category) {
  const draft = newDraft(category, hello.identity.compounds[0]);
  const { building, text } = proxy.prefill;
  const place = building && proxyPlaces().find((p) => p.buildings.some((b) => b.name === building));
  if (place) { draft.compound = place.compound.id; draft.building = building; }
  if (text) draft.description = text;
  proxy = { ...proxy, step: "form", draft, problem: "", needed: null };
  drawProxy(true);
}

function proxyScreen() {
  const title = (...text) => el("h2", { id: "proxy-title" }, ...text);
  if (proxy.step === "category") {
    return [
      title(t("proxy_report")),
      el("p", { class: "hint" }, t("proxy_hint")),
      el("h3", {}, t("proxy_choose")),
      categoryTiles(hello.community.categories, pickProxyCategory),
      el("div", { class: "actions" }, el("button", { type: "button", id: "proxy-cancel", onclick: closeProxy }, t("back"))),
    ];
  }
  if (proxy.step === "slip") {
    const { incident, key } = proxy;
    return [
      title(`${t("proxy_done")} ${incident.ticket}`),
      ticketView(incident, key, {
        category: hello.community.categories.find((c) => c.id === incident.report.category),
        compound: hello.community.compounds.find((c) => c.id === incident.report.compound),
        community: hello.identity.community,
        extra: [el("p", { class: "notice", id: "proxy-slip-hint" }, t("proxy_slip_hint"))],
        done: closeProxy,
      }),
    ];
  }
  const d = proxy.draft;
  const words = el("textarea", { id: "proxy-text", maxlength: 500, oninput: (e) => { d.description = e.target.value; } });
  words.value = d.description;
  return el("form", { class: "proxy-form", id: "proxy-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); sendProxy(); } },
    title(el("span", { "aria-hidden": "true" }, d.category.icon, " "), name(d.category.name, d.category.name_en)),
    phrasesPicker(d, proxyChange, proxy.needed === "what"),
    el("label", { class: "own-words" }, el("span", {}, t("describe")), words),
    placePicker(d, proxyPlaces(), proxyChange, proxy.needed === "where"),
    el("div", { class: "choices" },
      keyButton(d, "room", t("room_button"), 6, proxyChange),
      keyButton(d, "phone", t("phone_button"), 15, proxyChange)),
    urgencyPicker(d, proxyChange),
    el("div", { class: "form-end" },
      proxy.problem ? el("p", { class: "error-text", role: "alert", id: "proxy-error" }, proxy.problem) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", id: "proxy-back", onclick: () => {
          proxy = { ...proxy, step: "category", prefill: { building: d.building, text: d.description }, problem: "", needed: null };
          drawProxy(true);
        } }, t("back")),
        el("button", { type: "submit", class: "primary", id: "proxy-ok", disabled: !!proxy.sending }, proxy.sending ? t("sending") : t("submit_proxy")))));
}

function sendProxy() {
  const d = proxy.draft;
  const lacking = missing(d);
  if (lacking) {
    const what = lacking === "need_where" ? "where" : "what";
    proxy = { ...proxy, problem: t(what === "what" ? "proxy_need_what" : lacking), needed: what };
  } else if (conn.send({ type: "report", request_id: d.request_id, report: reportOf(d) })) {
    proxy = { ...proxy, sending: true, problem: "", needed: null };
  } else {
    proxy = { ...proxy, problem: t("offline"), needed: null };
  }
  drawProxy();
}

document.getElementById("proxy-open").addEventListener("click", () => openProxy());
document.getElementById("proxy").addEventListener("cancel", (e) => { e.preventDefault(); closeProxy(); });

const PATROL_ITEMS = ["消防通道", "楼道杂物", "电动车充电", "门禁", "楼道照明", "高空坠物隐患"];

/** 巡防: a round of this building head's buildings; something found becomes a 代报 in one tap. */
function openPatrol() {
  const buildings = hello.identity.buildings ?? [];
  document.getElementById("patrol-buildings").replaceChildren(...buildings.map((b) =>
    el("label", { class: "chip" }, el("input", { type: "checkbox", value: b, checked: true }), ` ${b}`)));
  const checked = document.getElementById("patrol-checked");
  document.getElementById("patrol-quick").replaceChildren(...PATROL_ITEMS.map((item) =>
    el("button", { type: "button", class: "chip", onclick: () => { checked.value = checked.value ? `${checked.value}、${item}` : item; } }, item)));
  checked.value = "";
  document.getElementById("patrol-found").value = "";
  document.getElementById("patrol-error").textContent = "";
  applyI18n(document.getElementById("patrol"));
  document.getElementById("patrol").showModal();
}

document.getElementById("patrol-open").addEventListener("click", openPatrol);
document.getElementById("patrol-cancel").addEventListener("click", () => document.getElementById("patrol").close());
document.getElementById("patrol-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  // One round, one record: not twice for a double tap.
  const ok = document.getElementById("patrol-ok");
  if (ok.disabled) return;
  ok.disabled = true;
  try { await recordPatrol(); } finally { ok.disabled = false; }
});

async function recordPatrol() {
  const buildings = [...document.querySelectorAll("#patrol-buildings input:checked")].map((i) => i.value);
  const checked = document.getElementById("patrol-checked").value.trim();
  const found = document.getElementById("patrol-found").value.trim();
  const r = await fetch("/api/patrols", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ buildings, checked, found }) }).catch(() => null);
  if (!r?.ok) {
    document.getElementById("patrol-error").textContent = (await r?.json().catch(() => null))?.message_zh ?? t("offline");
    return;
  }
  document.getElementById("patrol").close();
  toast(t("patrol_done"));
  // What was found is a report to make: one tap opens it, filled in.
  if (found) openProxy({ building: buildings[0], text: found });
}

// Installable on a phone: the shell is cached by the service worker; the data is always live.
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});

async function main() {
  applyI18n();
  const r = await fetch("/api/rules").catch(() => null);
  rules = r?.ok ? await r.json() : [];
  conn.start();
}
main();
