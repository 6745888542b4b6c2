// The grid workers' live board: open incidents, most urgent first, each with its first-time
// timer; new reports arrive with a sound and a highlight; the link mends itself.

import { Connection, merge, showLink } from "./connection.js";
import { applyI18n, name, t, toggleLang } from "./i18n.js";
import { el, formatSpan, formatTime, toast } from "./format.js";

/** A target is "near" once this share of it has passed. */
const NEAR = 0.75;

let hello = null;
const open = new Map();      // incident id → incident
const closed = new Map();    // incidents seen closed since the page opened (one may be reopened)
const fresh = new Set();     // ids to highlight
const phones = new Map();    // incident id → phone number the server revealed to this worker
let nextId = 1;
let onDuty = [];             // the roster: who is on duty now, by rota or by hand

const conn = new Connection({
  onState: showLink,
  onHello(msg) {
    hello = msg;
    document.getElementById("who").textContent = msg.identity.name;
    document.getElementById("duty-box").hidden = msg.identity.role !== "worker";
    document.getElementById("admin-link").hidden = msg.identity.role !== "supervisor";
    renderDuty();
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
        const incident = merge(open.get(msg.event.incident) ?? closed.get(msg.event.incident), msg.patch);
        if (isOpen(incident)) {
          open.set(incident.id, incident);
          closed.delete(incident.id);
        } else {
          open.delete(incident.id);
          closed.set(incident.id, incident);
        }
        break;
      }
      case "alert":
        fresh.add(msg.incident.id);
        setTimeout(() => { fresh.delete(msg.incident.id); render(); }, 10_000);
        chime();
        break;
      case "roster":
        onDuty = msg.on_duty;
        renderRoster();
        renderDuty();
        return;
      case "revealed":
        phones.set(msg.incident, msg.phone);
        break;
      case "duty_set":
        // The roster that follows says what it changed.
        return;
      case "error":
        toast(msg.holder ? `${msg.message_zh}（${msg.holder.name}）` : msg.message_zh);
        return;
      default:
        return;
    }
    render();
  },
  onUnauthorized() { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; },
});

function isOpen(i) { return ["reported", "claimed", "handed_over"].includes(i.status); }

/** The timer that matters now and how far along it is. */
function timing(i, now) {
  const responding = i.status === "reported";
  const deadline = responding ? i.respond_by : i.resolve_by;
  const start = responding ? i.reported_at : Math.max(i.reported_at, i.resolve_by - target(i).resolve);
  const share = (now - start) / Math.max(1, deadline - start);
  const level = now >= deadline ? "late" : share >= NEAR ? "near" : "ok";
  return { deadline, level, waited: now - i.reported_at };
}

function target(i) {
  const c = hello?.community.categories.find((c) => c.id === i.report.category);
  return c ? c.targets[i.report.urgency] : { respond: 1, resolve: 1 };
}

const RANK = { late: 0, near: 1, ok: 2 };
function sorted(now) {
  return [...open.values()].sort((a, b) => {
    const ta = timing(a, now), tb = timing(b, now);
    return (b.report.urgency === "urgent") - (a.report.urgency === "urgent")
      || RANK[ta.level] - RANK[tb.level]
      || ta.deadline - tb.deadline;
  });
}

function act(type, incident, prompt) {
  const send = (text) => {
    const body = { type, id: nextId++, incident: incident.id };
    if (type === "note") body.text = text;
    if (type === "hand_over" || type === "return") body.note = text;
    if (type === "resolve") body.outcome = text;
    if (type === "reopen" || type === "cancel") body.reason = text;
    if (!conn.send(body)) toast(t("offline"));
  };
  if (!prompt) return send();
  const dialog = document.getElementById("ask");
  document.getElementById("ask-label").textContent = `${incident.ticket} · ${t(prompt)}`;
  const text = document.getElementById("ask-text");
  text.value = "";
  dialog.onclose = () => { if (dialog.returnValue === "ok" && text.value.trim()) send(text.value.trim()); };
  dialog.returnValue = "";
  dialog.showModal();
  text.focus();
}
document.getElementById("ask-form").addEventListener("submit", () => { document.getElementById("ask").returnValue = "ok"; });
document.getElementById("ask-cancel").addEventListener("click", () => document.getElementById("ask").close());

function buttons(i) {
  const me = hello.identity.id;
  const mine = i.holder?.id === me || hello.identity.role === "supervisor";
  const b = (type, prompt, primary) => el("button", { type: "button", class: primary ? "primary" : "", dataset: { action: type }, onclick: () => act(type, i, prompt) }, t(type));
  const list = [];
  if (i.status === "reported") list.push(b("claim", null, true));
  list.push(b("note", "note_prompt"));
  if (i.status === "claimed" && mine) list.push(b("hand_over", "hand_over_prompt"));
  if (i.status === "handed_over" && mine) list.push(b("return", "return_prompt"));
  if (i.status !== "reported" && mine) list.push(b("resolve", "resolve_prompt", true));
  if (i.status === "reported" || mine) list.push(b("cancel", "cancel_prompt"));
  return list;
}

function isPrivate(i) {
  return !!hello.community.categories.find((c) => c.id === i.report.category)?.private;
}

/** The same rule as the server's: a private case's number is for its holder and supervisors. */
function mayReveal(i) {
  return hello.identity.role === "supervisor" || !isPrivate(i) || i.holder?.id === hello.identity.id;
}

function reveal(i) {
  if (!conn.send({ type: "reveal", id: nextId++, incident: i.id })) toast(t("offline"));
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

function card(i, now) {
  const category = hello.community.categories.find((c) => c.id === i.report.category);
  const compound = hello.community.compounds.find((c) => c.id === i.report.compound);
  const { level, waited, deadline } = timing(i, now);
  // The server sends the number masked; asking for it is logged, and the answer is a call link.
  const phone = i.report.phone
    ? (phones.has(i.id)
      ? el("a", { class: "phone", href: `tel:${phones.get(i.id).replace(/[^\d+]/g, "")}` }, phones.get(i.id))
      : mayReveal(i)
        ? el("button", { type: "button", class: "reveal", onclick: () => reveal(i) }, `${i.report.phone} · ${t("show_phone")}`)
        : el("span", {}, i.report.phone))
    : null;
  const restricted = isPrivate(i) && !i.report.description;
  return el("li", { class: `card${fresh.has(i.id) ? " fresh" : ""}`, id: `incident-${i.id}`, dataset: { level, status: i.status, ticket: i.ticket } },
    el("div", { class: "top" },
      el("span", { class: "ticket-no" }, i.ticket),
      i.report.urgency === "urgent" ? el("span", { class: "urgent-tag" }, t("urgent")) : null,
      el("span", {}, category ? `${category.icon} ${name(category.name, category.name_en)}` : i.report.category),
      el("span", { class: "timer", dataset: { since: i.reported_at, deadline }, title: t(level === "late" ? "late" : level === "near" ? "near" : "waited") }, `${t("waited")} ${formatSpan(waited)}`)),
    el("div", { class: "status" }, t(`status_${i.status}`), i.holder && i.status !== "reported" ? ` · ${i.holder.name}` : "", i.escalated ? ` · ${t("escalated")}` : ""),
    el("div", { class: "meta" }, `${compound ? compound.name : i.report.compound} ${[i.report.building, i.report.unit, i.report.room].filter(Boolean).join(" ")} · ${t("reported_at")} ${formatTime(i.reported_at)}`),
    el("div", { class: "desc" }, restricted ? t("private_case") : i.report.description),
    attachments(i),
    phone,
    i.notes.length ? el("details", {}, el("summary", {}, `${t("note")} (${i.notes.length})`), el("ul", {}, i.notes.map((n) => el("li", {}, `${formatTime(n.at)} ${n.by.name}: ${n.text}`)))) : null,
    el("div", { class: "buttons" }, buttons(i)),
  );
}

function render() {
  applyI18n();
  if (!hello) return;
  const now = Date.now();
  const list = sorted(now);
  document.getElementById("incidents").replaceChildren(...list.map((i) => card(i, now)));
  document.getElementById("count").textContent = String(list.length);
  document.getElementById("empty").hidden = list.length > 0;
  renderDuty();
}

/** Timers count up every second without rebuilding the cards. */
setInterval(() => {
  const now = Date.now();
  for (const timer of document.querySelectorAll(".timer")) {
    timer.textContent = `${t("waited")} ${formatSpan(now - Number(timer.dataset.since))}`;
    const li = timer.closest(".card");
    const incident = open.get(Number(li.id.replace("incident-", "")));
    if (incident) li.dataset.level = timing(incident, now).level;
  }
}, 1000);

/** This worker's line in the roster, if on duty. */
function mine() { return onDuty.find((d) => d.worker.id === hello?.identity.id); }

/** On or off duty as the server says (the rota, or this worker's own switch over it). */
function renderDuty() {
  const me = mine();
  const button = document.getElementById("duty");
  button.setAttribute("aria-pressed", String(Boolean(me)));
  button.textContent = me ? `${t("on_duty")}（${me.manual ? t("by_hand") : t("by_rota")}）` : t("off_duty");
}

function renderRoster() {
  document.getElementById("roster").textContent = onDuty.length
    ? `${t("on_duty")}: ${onDuty.map((d) => d.worker.name + (d.manual ? `（${t("by_hand")}）` : "")).join("、")}`
    : `${t("on_duty")}: ${t("nobody")}`;
}

function askDuty(on) {
  if (!conn.send({ type: "duty", id: nextId++, on })) toast(t("offline"));
}

document.getElementById("duty").addEventListener("click", () => askDuty(!mine()));
document.getElementById("lang").addEventListener("click", () => toggleLang(() => { showLink(); render(); }));
document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST" });
  location.href = "/login";
});

let audio;
/** A short two-tone chime, made on the spot (no sound file to ship). */
function chime() {
  try {
    audio ??= new AudioContext();
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
  } catch { /* no sound device: the highlight still shows */ }
}

applyI18n();
conn.start();
