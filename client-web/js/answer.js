// The resident's two questions after 办结 — 解决了吗？满意吗？ — as one block of big buttons, the
// same at the kiosk, on the status page and in a 回访 on the board. The first tap is kept per
// incident and handling, so a redraw between the two taps loses nothing.

import { el } from "./format.js";
import { t } from "./i18n.js";

const RATINGS = ["satisfied", "basically_satisfied", "dissatisfied"];
const chosen = new Map();
const sent = new Set();

/**
 * The questions for incident `id` in handling `round`; `send(solved, rating)` is called once,
 * with the answer, and returns a promise (a failure lets the resident answer again).
 */
export function questions(id, round, send) {
  const which = `${id}/${round ?? 0}`;
  const solved = chosen.get(which);
  // Built with `el`, which leaves out what is not there (a bare `append` would print "null").
  let section = null;
  const redraw = () => section.replaceWith(questions(id, round, send));
  const pick = (value) => { chosen.set(which, value); redraw(); };
  const answer = async (rating) => {
    if (sent.has(which)) return;
    sent.add(which);
    redraw();
    try {
      await send(solved, rating);
    } catch {
      sent.delete(which);
      redraw();
    }
  };
  const busy = sent.has(which);
  section = el("div", { class: "rating", role: "group", "aria-labelledby": `solved-title-${id}` },
    el("h2", { id: `solved-title-${id}` }, t("solved_prompt")),
    el("div", { class: "actions", role: "group", "aria-labelledby": `solved-title-${id}` },
      [true, false].map((value) => el("button", {
        type: "button", dataset: { solved: String(value) }, disabled: busy,
        "aria-pressed": String(solved === value), onclick: () => pick(value),
      }, t(value ? "solved_yes" : "solved_no")))),
    solved === undefined ? null : el("h2", { id: `rate-title-${id}` }, t("rate_prompt")),
    solved === undefined ? null : el("div", { class: "actions", role: "group", "aria-labelledby": `rate-title-${id}` },
      RATINGS.map((rating) => el("button", { type: "button", dataset: { rating }, disabled: busy, onclick: () => answer(rating) }, t(rating)))),
    solved === false ? el("p", { class: "hint" }, t("solved_no_hint")) : null,
  );
  return section;
}

/** Lets every question be answered again (after a refusal: the page looks again first). */
export function resetAnswers() {
  sent.clear();
}

/** What the resident is told once their answer is recorded. */
export function thanks(incident) {
  const last = incident.answers?.at(-1) ?? (incident.rating ? { rating: incident.rating, solved: true } : null);
  if (!last) return null;
  return el("p", { class: "notice", role: "status", id: "rated" },
    last.solved ? `${t("thanks")}：${t(last.rating)}` : t("second_handling_started"));
}
