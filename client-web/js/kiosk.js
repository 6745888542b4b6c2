// The kiosk at a compound's 红帆驿站: few steps, big buttons, nothing lost. A report is kept
// in localStorage with its request id until the server says it is stored, so a dropped link or
// a reload sends it again, and the server stores it once.

import { Connection, me, merge, showLink } from "./connection.js";
import { applyI18n, name, t, toggleLang } from "./i18n.js";
import { el, toast } from "./format.js";

const PENDING = "hongfan.kiosk.pending";
const IDLE_MS = 120_000;

const screen = document.getElementById("screen");
let hello = null;
let draft = null;          // the report being filled in
let showing = null;        // the incident whose ticket is on screen
let lookupId = 1;
let idleTimer;

function pending() {
  try { return JSON.parse(localStorage.getItem(PENDING) || "[]"); } catch { return []; }
}
function savePending(list) { localStorage.setItem(PENDING, JSON.stringify(list)); }

function requestId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** After a while without a touch the kiosk clears itself for the next person. */
function touched() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => { draft = null; showing = null; render(); }, IDLE_MS);
}
for (const kind of ["pointerdown", "keydown", "input"]) document.addEventListener(kind, touched, { passive: true });

const conn = new Connection({
  as: "kiosk",
  onState: showLink,
  onHello(msg) {
    const first = !hello;
    hello = msg;
    const compound = msg.community.compounds.find((c) => c.id === msg.identity.compounds[0]);
    document.getElementById("station").textContent = `${compound?.station ?? msg.identity.name} · ${t("kiosk")}`;
    flush();
    if (first) render();
  },
  onMessage(msg) {
    if (msg.type === "reported") {
      savePending(pending().filter((p) => p.request_id !== msg.request_id));
      if (draft?.request_id === msg.request_id || (showing && showing.request_id === msg.request_id)) {
        draft = null;
        showing = msg.incident;
        render();
      }
    } else if (msg.type === "event" && showing?.id === msg.event.incident) {
      showing = merge(showing, msg.patch);
      render();
    } else if (msg.type === "found") {
      showing = msg.incident;
      render();
    } else if (msg.type === "error") {
      if (msg.request_id) {
        // The server refused it for good (not a dropped link): do not send it again.
        savePending(pending().filter((p) => p.request_id !== msg.request_id));
        if (draft?.request_id === msg.request_id) { draft.sending = false; render(); }
      }
      toast(msg.code === "not_found" ? t("not_found") : msg.message_zh);
    }
  },
  onCommunity(community) {
    if (!hello) return;
    hello.community = community;
    // The resident at the screen keeps what they are doing; the choice of categories changes.
    if (!draft && !showing) render();
  },
  onUnauthorized() { hello = null; renderPairing(); },
});

/** Sends every report still waiting, oldest first. */
function flush() {
  for (const p of pending()) conn.send({ type: "report", request_id: p.request_id, report: p.report });
}

function categoryName(c) { return name(c.name, c.name_en); }

function render() {
  applyI18n();
  if (!hello) return;
  screen.replaceChildren();
  window.scrollTo(0, 0);
  if (showing) return renderTicket();
  if (draft?.lookup) return renderLookup();
  if (draft) return renderForm();
  screen.append(
    el("h2", {}, t("choose")),
    el("div", { class: "categories" }, hello.community.categories.filter((c) => !c.retired).map((c) =>
      el("button", { type: "button", onclick: () => start(c) },
        el("span", { class: "icon", "aria-hidden": "true" }, c.icon), categoryName(c)))),
    el("div", { class: "actions spaced" },
      el("button", { type: "button", id: "lookup", onclick: () => { draft = { lookup: true }; render(); } }, t("lookup"))),
  );
}

function start(category) {
  draft = { request_id: requestId(), category, urgency: "normal", building: "", unit: "", room: "", description: "", phone: "" };
  render();
}

function field(key, label, attrs = {}) {
  const input = el(attrs.multiline ? "textarea" : "input", {
    id: `f-${key}`, name: key, autocomplete: "off", inputmode: attrs.inputmode, maxlength: attrs.max,
    oninput: (e) => { draft[key] = e.target.value; },
  });
  input.value = draft[key];
  return el("label", {}, t(label), input);
}

function renderForm() {
  const c = draft.category;
  const urgencyButton = (value) => el("button", {
    type: "button", class: value, "aria-pressed": String(draft.urgency === value),
    onclick: () => { draft.urgency = value; render(); },
  }, t(value));
  const offline = pending().some((p) => p.request_id === draft.request_id);
  screen.append(
    el("h2", {}, el("span", { "aria-hidden": "true" }, c.icon, " "), categoryName(c)),
    el("form", { class: "kiosk-form", onsubmit: (e) => { e.preventDefault(); submit(); } },
      el("div", { class: "place" }, field("building", "building", { max: 20 }), field("unit", "unit", { max: 20 }), field("room", "room", { max: 20, inputmode: "numeric" })),
      field("description", "description", { multiline: true, max: 500 }),
      field("phone", "phone", { inputmode: "tel", max: 20 }),
      el("div", { role: "group", "aria-label": t("urgency") }, el("div", { class: "urgency" }, urgencyButton("normal"), urgencyButton("urgent"))),
      offline ? el("p", { class: "notice", role: "status" }, t("saved_offline")) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", id: "back", onclick: () => { draft = null; render(); } }, t("back")),
        el("button", { type: "submit", class: "primary", id: "submit", disabled: draft.sending }, draft.sending ? t("sending") : t("submit"))),
    ),
  );
}

function submit() {
  if (!draft.description.trim()) { toast(t("need_description")); return; }
  const report = {
    compound: hello.identity.compounds[0], category: draft.category.id, urgency: draft.urgency,
    building: draft.building.trim(), unit: draft.unit.trim(), room: draft.room.trim(),
    description: draft.description.trim(), phone: draft.phone.trim() || null,
  };
  // Kept before it is sent: from here on it is never lost.
  savePending([...pending().filter((p) => p.request_id !== draft.request_id), { request_id: draft.request_id, report }]);
  draft.sending = true;
  conn.send({ type: "report", request_id: draft.request_id, report });
  render();
}

function statusText(incident) {
  const base = t(`status_${incident.status}`);
  return incident.holder && incident.status !== "reported" ? `${base} · ${t("by")} ${incident.holder.name}` : base;
}

function renderTicket() {
  const i = showing;
  const category = hello.community.categories.find((c) => c.id === i.report.category);
  screen.append(
    el("section", { class: "ticket", "aria-label": t("your_ticket") },
      el("p", {}, t("your_ticket")),
      el("div", { class: "number", id: "ticket" }, i.ticket),
      el("div", { class: "status", id: "status", dataset: { status: i.status } }, statusText(i)),
      el("p", {}, category ? `${category.icon} ${categoryName(category)}` : "", " · ", [i.report.building, i.report.unit, i.report.room].filter(Boolean).join(" ")),
      i.report.phone ? el("p", {}, `${t("phone").replace(/（.*）|\(.*\)/, "")}: ${i.report.phone}`) : null,
      el("p", {}, t("keep_ticket"))),
    i.status === "resolved" && !i.rating ? el("section", { class: "rating", "aria-label": t("rate_prompt") },
      el("h2", {}, t("rate_prompt")),
      el("div", { class: "actions" }, ["satisfied", "basically_satisfied", "dissatisfied"].map((rating) =>
        el("button", { type: "button", dataset: { rating }, onclick: () => conn.send({ type: "rate", id: lookupId++, incident: i.id, rating }) }, t(rating))))) : null,
    i.rating ? el("p", { class: "notice", role: "status" }, `${t("thanks")}：${t(i.rating)}`) : null,
    el("div", { class: "actions spaced" },
      el("button", { type: "button", class: "primary", onclick: () => { showing = null; render(); } }, t("done"))),
  );
}

function renderLookup() {
  const input = el("input", { id: "ticket-input", inputmode: "numeric", autocomplete: "off", maxlength: 12 });
  screen.append(
    el("h2", {}, t("lookup")),
    el("form", { class: "kiosk-form", onsubmit: (e) => { e.preventDefault(); conn.send({ type: "lookup", id: lookupId++, ticket: input.value }); } },
      el("label", {}, t("ticket_prompt"), input),
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => { draft = null; render(); } }, t("back")),
        el("button", { type: "submit", class: "primary" }, t("find")))),
  );
  input.focus();
}

function renderPairing(problem) {
  applyI18n();
  const input = el("input", { id: "credential", autocomplete: "off" });
  const error = el("p", { class: "error-text", role: "alert", id: "pair-error" }, problem ?? "");
  screen.replaceChildren(
    el("h2", {}, t("pair_title")),
    el("form", { class: "kiosk-form", onsubmit: async (e) => {
      e.preventDefault();
      const refused = await pair(input.value);
      if (refused) error.textContent = refused; else location.reload();
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
  const problem = await r.json().catch(() => ({}));
  return problem.message_zh ?? t("wrong");
}

document.getElementById("lang").addEventListener("click", () => toggleLang(() => { showLink(); render(); }));

async function main() {
  applyI18n();
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
  touched();
}
main();
