// A resident's own status page, opened from the QR code on their slip (`/s#<ticket>-<key>`):
// where the report is, who has it, what was done, and 解决了吗？满意吗？ once it is resolved. The code
// stays in the fragment, which the browser never sends anywhere; the page asks the server with
// it every few seconds while it is open.

import { applyI18n, labelled, name, t, toggleLang } from "./i18n.js";
import { el, formatTime, put } from "./format.js";
import { questions, thanks } from "./answer.js";
import { placeOf, promiseLine } from "./slip.js";

const EVERY_MS = 5_000;
const screen = document.getElementById("screen");
// Another community than the default one follows the code: `/s#<ticket>-<key>-<community>`.
const [ticket, key, ...rest] = decodeURIComponent(location.hash.slice(1)).split("-");
const communityId = rest.join("-") || "default";
let community = null;
let status = null;
let problem = "";
let timer;

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw Object.assign(new Error(data?.message ?? String(r.status)), { zh: data?.message_zh, code: data?.code });
  return data;
}

let shown = "";

async function refresh() {
  clearTimeout(timer);
  try {
    status = await post("/api/status", { ticket, key, community: communityId });
    problem = "";
  } catch (e) {
    problem = e.code === "not_found" ? t("status_missing") : (e.zh ?? t("offline"));
  }
  // Redrawn only when something changed: a screen reader is not made to read it all again, and
  // a button is not replaced under the resident's finger.
  const now = JSON.stringify([status, problem]);
  if (now !== shown) { shown = now; render(); }
  document.getElementById("updated").textContent = `${t("status_updated")} ${formatTime(Date.now())}`;
  // Until it is finished (resolved and rated, or cancelled), keep following it.
  const finished = status && (status.status === "cancelled" || status.status === "sent_back" || (status.status === "resolved" && status.rating));
  if (!finished && document.visibilityState === "visible") timer = setTimeout(refresh, EVERY_MS);
}

/** 解决了吗？满意吗？: not solved opens it again (二次办理), and the page follows it again. */
async function answer(solved, rating) {
  try {
    status = await post("/api/status/rate", { ticket, key, community: communityId, rating, solved });
    problem = "";
  } catch (e) {
    problem = e.zh ?? t("offline");
    render();
    throw e;
  }
  shown = JSON.stringify([status, problem]);
  render();
  if (!solved) refresh();
}

function step(done, label, detail) {
  return el("li", { dataset: { done: String(done) } }, el("span", { "aria-hidden": "true" }, done ? "✓ " : "○ "), el("strong", {}, label), detail ? ` ${detail}` : "");
}

function render() {
  applyI18n();
  if (!status) {
    put(screen, problem ? el("p", { class: "error-text", role: "alert" }, problem) : el("p", {}, t("connecting")));
    return;
  }
  const category = community?.categories.find((c) => c.id === status.category);
  const compound = community?.compounds.find((c) => c.id === status.compound);
  const s = status.status;
  put(screen,
    el("section", { class: "ticket", "aria-labelledby": "ticket-heading" },
      el("h2", { id: "ticket-heading" }, el("span", { class: "label" }, t("your_ticket")), el("span", { class: "number", id: "ticket" }, status.ticket)),
      el("div", { class: "status", id: "status", dataset: { status: s } }, t(`status_${s}`)),
      // What the office promised, from the server's own deadlines (as on the kiosk's ticket).
      promiseLine(status),
      el("p", {}, [category ? `${category.icon} ${name(category.name, category.name_en)}` : "", placeOf(status, compound)].filter(Boolean).join(" · "))),
    el("ol", { class: "steps" },
      step(true, t("change_reported"), formatTime(status.reported_at)),
      s === "cancelled" || s === "sent_back" ? step(true, t(`status_${s}`), "") : [
        step(!!status.claimed_at, t("change_claimed"), status.claimed_at ? `${formatTime(status.claimed_at)} · ${t("worker")} ${status.holder ?? ""}` : ""),
        s === "handed_over" ? step(true, t("status_handed_over"), "") : null,
        step(s === "resolved", t("status_resolved"), status.resolved_at ? formatTime(status.resolved_at) : ""),
      ]),
    status.notices?.length ? el("section", { class: "notices", id: "notices", "aria-labelledby": "notices-title" },
      el("h2", { id: "notices-title" }, t("notices_title")),
      el("ul", {}, status.notices.map((n) => el("li", {}, el("strong", {}, labelled(`${n.by} (${formatTime(n.at)})`)), n.text)))) : null,
    status.outcome ? el("p", { class: "notice", id: "outcome" }, `${labelled(t("outcome"))}${status.outcome}`) : null,
    s === "resolved" && !status.rating ? questions(status.ticket, status.round, answer) : null,
    s === "resolved" && status.rating ? thanks(status) : null,
    s !== "resolved" && status.round ? el("p", { class: "notice", role: "status", id: "rated" }, t("second_handling_started")) : null,
    problem ? el("p", { class: "error-text", role: "alert" }, problem) : null,
  );
}

document.getElementById("lang").addEventListener("click", () => toggleLang(render));
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") refresh(); });

async function main() {
  applyI18n();
  if (!ticket || !key) { problem = t("status_missing"); render(); return; }
  community = await fetch(`/api/community?id=${encodeURIComponent(communityId)}`).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  refresh();
}
main();
