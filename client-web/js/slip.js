// A report's ticket as the resident takes it away: the number, where it stands, when the office
// promised to act, the private code (查询码) with its QR code for their own phone, read aloud on
// request, and a printed slip (a receipt printer's width). The kiosk shows it after a report or a
// lookup, the board after a building head's 代报: the same code, so the resident gets the same.

import { el, formatTime } from "./format.js";
import { durationWords, labelled, name, t } from "./i18n.js";
import { buildingLabel } from "./pickers.js";

/** Where the report is, as a resident reads it: compound, building, unit, room. */
export function placeOf(report, compound) {
  return [compound?.name, buildingLabel(report.building), report.unit, report.room].filter(Boolean).join(" ");
}

/** "已接单 · 接单人 王芳". */
export function statusText(incident) {
  const base = t(`status_${incident.status}`);
  return incident.holder && incident.status !== "reported" ? `${base} · ${t("by")} ${incident.holder.name}` : base;
}

/**
 * What the office promised, while it is owed: to contact the resident within the response
 * target (its deadline), then to resolve it by the resolution deadline. `reported_at`,
 * `respond_by` and `resolve_by` are all it needs, so the status page can say it too.
 */
export function promiseText(incident) {
  if (incident.status === "reported") {
    // The first handling's target in words; a second handling has its own deadline.
    const span = incident.round ? null : durationWords(incident.respond_by - incident.reported_at);
    return span
      ? t("promise_respond").replace("{span}", span).replace("{at}", formatTime(incident.respond_by))
      : t("promise_respond_by").replace("{at}", formatTime(incident.respond_by));
  }
  if (incident.status === "claimed" || incident.status === "handed_over") {
    return t("promise_resolve").replace("{at}", formatTime(incident.resolve_by));
  }
  return null;
}

export function promiseLine(incident) {
  const text = promiseText(incident);
  return text ? el("p", { class: "promise", id: "promise" }, text) : null;
}

/** The code as it is read: 1234 567 890. */
export const spacedKey = (key) => key.replace(/(\d{4})(\d{3})(\d{3})/, "$1 $2 $3");

/** The status link of one slip, asked once per ticket (not at every redraw). */
let asked = { ticket: null, answer: null };
export function linkOf(ticket, key, community) {
  if (asked.ticket !== ticket) {
    const answer = fetch("/api/status/link", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ticket, key, community }) })
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null);
    asked = { ticket, answer };
  }
  return asked.answer;
}

function chineseVoice() {
  return window.speechSynthesis?.getVoices().find((v) => v.lang.startsWith("zh"));
}

/** Reads the ticket and, when the resident holds it, the code, slowly, in Chinese. */
export function readAloud(ticket, key) {
  const voice = chineseVoice();
  if (!voice) return;
  const digits = (s) => s.split("").join(" ");
  const text = key ? `您的受理号是 ${digits(ticket)}。查询码是 ${digits(key)}` : `您的受理号是 ${digits(ticket)}`;
  const said = new SpeechSynthesisUtterance(text);
  said.voice = voice;
  said.lang = voice.lang;
  said.rate = 0.8;
  speechSynthesis.speak(said);
}

/**
 * The ticket on screen, with its slip ready to print (put in `document.body`). `category` and
 * `compound` name the report; `community` is the incident's (for its status link); `extra`
 * goes below the number (messages, the resident's questions); `done` ends it.
 */
export function ticketView(incident, key, { category, compound, community, extra = [], done }) {
  const what = category ? `${category.icon} ${name(category.name, category.name_en)}` : "";
  const qr = el("img", { class: "qr", id: "status-qr", alt: t("scan_to_follow"), hidden: true });
  const printed = key ? slip(incident, key, what, compound, community, qr) : null;
  document.getElementById("slip")?.remove();
  if (printed) document.body.append(printed);
  return el("section", { class: `ticket${key ? " with-qr" : ""}`, "aria-labelledby": "ticket-heading" },
    el("div", { class: "ticket-main" },
      el("h2", { id: "ticket-heading" }, el("span", { class: "label" }, t("your_ticket")), el("span", { class: "number", id: "ticket" }, incident.ticket)),
      el("div", { class: "status", id: "status", dataset: { status: incident.status } }, statusText(incident)),
      promiseLine(incident),
      el("p", {}, [what, placeOf(incident.report, compound)].filter(Boolean).join(" · ")),
      el("p", { class: "hint" }, t("keep_ticket")),
      extra),
    el("div", { class: "ticket-side" },
      key ? el("div", { class: "follow" }, qr,
        el("p", {}, t("scan_to_follow")),
        el("p", {}, labelled(t("slip_code")), el("strong", { id: "slip-code" }, spacedKey(key)))) : null,
      el("div", { class: "actions" },
        key ? el("button", { type: "button", id: "print", onclick: () => window.print() }, `🖨 ${t("print_slip")}`) : null,
        chineseVoice() ? el("button", { type: "button", id: "read-aloud", onclick: () => readAloud(incident.ticket, key) }, `🔊 ${t("read_aloud")}`) : null,
        el("button", { type: "button", class: "primary", id: "done", onclick: () => { document.getElementById("slip")?.remove(); done(); } }, t("done")))));
}

/** The printed slip: shown only while printing (`body.printing`). */
function slip(incident, key, what, compound, community, screenQr) {
  const qr = el("img", { class: "qr", alt: "" });
  linkOf(incident.ticket, key, community).then((link) => {
    if (!link) return;
    const src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(link.qr_svg)}`;
    qr.src = src;
    screenQr.src = src;
    screenQr.hidden = false;
    screenQr.dataset.link = link.link;
  });
  return el("section", { class: "slip", id: "slip", "aria-hidden": "true" },
    el("p", { class: "slip-title" }, t("slip_title")),
    el("p", {}, labelled(t("ticket")), el("strong", { class: "slip-ticket" }, incident.ticket)),
    el("p", {}, `${labelled(t("category_label"))}${what}`),
    el("p", {}, `${labelled(t("place"))}${placeOf(incident.report, compound)}`),
    el("p", {}, `${labelled(t("time_label"))}${formatTime(incident.reported_at)}`),
    promiseText(incident) ? el("p", {}, promiseText(incident)) : null,
    qr,
    el("p", {}, t("scan_to_follow")),
    el("p", {}, `${labelled(t("slip_code"))}${spacedKey(key)}`));
}

// Printing shows the slip alone (see `body.printing` in the stylesheet).
window.addEventListener("beforeprint", () => document.body.classList.add("printing"));
window.addEventListener("afterprint", () => document.body.classList.remove("printing"));
