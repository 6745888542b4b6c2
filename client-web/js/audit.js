// The supervisors' audit: figures for a period and filters, each with what it means and the
// period before it, per worker, compound and category, two SVG charts, what is late right now,
// the incidents behind any figure and each one's full timeline, exports, and a printable monthly
// report with one page per compound for the street office.

import { me } from "./connection.js";
import { applyI18n, count, labelled, lang, name, t, toggleLang } from "./i18n.js";
import { el, formatLeft, formatTime, kept } from "./format.js";

const SHANGHAI = 8 * 3600_000;
const DAY = 86400_000;
let identity = null;
let community = null;
let summary = null;
let previous = null;   // the same filters over the period just before, for comparison
let lateNow = [];      // open incidents past the target that runs now
let paused = [];       // incidents of the period with a pause asked for (挂起)
let period = "week";

/** Midnight in Asia/Shanghai starting the day that `ms` falls in. */
function dayStart(ms) { return Math.floor((ms + SHANGHAI) / DAY) * DAY - SHANGHAI; }
function dateInput(ms) { return new Date(ms + SHANGHAI).toISOString().slice(0, 10); }
function fromDateInput(value) { return Date.parse(`${value}T00:00:00Z`) - SHANGHAI; }

function range() {
  const today = dayStart(Date.now());
  if (period === "today") return [today, today + DAY];
  if (period === "week") {
    const weekday = (new Date(today + SHANGHAI).getUTCDay() + 6) % 7; // Monday = 0
    return [today - weekday * DAY, today + DAY];
  }
  if (period === "month") {
    const d = new Date(today + SHANGHAI);
    return [Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) - SHANGHAI, today + DAY];
  }
  const from = fromDateInput(document.getElementById("from").value);
  const to = fromDateInput(document.getElementById("to").value) + DAY;
  return [from, Math.max(to, from + DAY)];
}

function params(extra = {}) {
  const [from, to] = range();
  const p = new URLSearchParams({ from, to, ...extra });
  for (const key of ["compound", "worker", "category"]) {
    const value = document.getElementById(key).value;
    if (value) p.set(key, value);
  }
  return p;
}

async function load() {
  const [from, to] = range();
  document.getElementById("from").value = dateInput(from);
  document.getElementById("to").value = dateInput(to - DAY);
  for (const b of document.querySelectorAll("[data-period]")) b.setAttribute("aria-pressed", String(b.dataset.period === period));
  const r = await fetch(`/api/audit/summary?${params()}`);
  if (!r.ok) return refuse(r.status);
  summary = await r.json();
  const json = (url, otherwise) => fetch(url).then((p) => (p.ok ? p.json() : otherwise)).catch(() => otherwise);
  // The period before; what is late now, whatever the period (every open incident); the pauses.
  [previous, lateNow, paused] = await Promise.all([
    json(`/api/audit/summary?${params({ from: 2 * from - to, to: from })}`, null),
    json(`/api/audit/incidents?${params({ from: 0, to: 8.64e15, only: "late_now" })}`, []),
    json(`/api/audit/incidents?${params({ only: "paused" })}`, []),
  ]);
  document.querySelector(".charts").hidden = false;
  document.getElementById("export-incidents").href = `/api/audit/export?${params({ format: "csv", what: "incidents" })}`;
  document.getElementById("export-figures").href = `/api/audit/export?${params({ format: "csv", what: "figures" })}`;
  document.getElementById("export-json").href = `/api/audit/export?${params({ format: "json", what: "figures" })}`;
  render();
}

const pct = (rate) => (rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`);
/** A duration in words ("28分47秒", "2天3小时"): a clock's "28:47" reads as hours or minutes. */
const span = (ms) => (ms === null || ms === undefined ? "—" : formatLeft(ms, lang()));
const breachText = (f) => t("breaches_of").replace("{n}", f.breaches).replace("{m}", f.breached ?? 0);

/** A figure: its name, its value, what it means, and the period before; a tap lists its incidents. */
function figureButton(key, value, only, before, goal) {
  const label = t(key);
  return el("button", { type: "button", class: "figure", dataset: { figure: key }, onclick: () => showList(key, only) },
    el("span", { class: "name" }, label), el("strong", {}, value),
    goal ? el("small", { class: "goal", dataset: { met: String(goal.met) } }, `${goal.met ? "✓" : "✗"} ${t("goal")} ≥ ${goal.percent}%`) : null,
    el("small", { class: "definition" }, t(`${key}_def`)),
    before === undefined ? null : el("small", { class: "previous" }, `${t("previous_period")} ${before}`));
}

function render() {
  applyI18n();
  const f = summary.figures;
  const p = previous?.figures;
  const was = (show) => (p ? show(p) : undefined);
  const source = (g) => `${t(`source_${g.source}`)} ${pct(g.satisfaction_rate)}（${g.rated}）`;
  // The office's aims (the community's goals), against the figure.
  const goals = community.goals ?? { response_rate: 90, satisfaction_rate: 90 };
  const aim = (rate, percent) => (rate === null || rate === undefined ? undefined : { percent, met: rate * 100 >= percent });
  document.getElementById("figures").replaceChildren(...[
    figureButton("reports", String(f.reports), "all", was((p) => String(p.reports))),
    figureButton("response_rate", pct(f.response_rate), "late_response", was((p) => pct(p.response_rate)), aim(f.response_rate, goals.response_rate)),
    figureButton("resolution_rate", pct(f.resolution_rate), "open", was((p) => pct(p.resolution_rate))),
    figureButton("resolved_in_target", pct(f.resolved_in_target_rate), "resolved", was((p) => pct(p.resolved_in_target_rate))),
    figureButton("first_time_rate", pct(f.first_time_rate), "second_handling", was((p) => pct(p.first_time_rate))),
    figureButton("second_handlings", String(f.second_handlings ?? 0), "second_handling", was((p) => String(p.second_handlings ?? 0))),
    figureButton("satisfaction", pct(f.satisfaction_rate), "dissatisfied", was((p) => pct(p.satisfaction_rate)), aim(f.satisfaction_rate, goals.satisfaction_rate)),
    figureButton("answer_rate", pct(f.answer_rate), "resolved", was((p) => pct(p.answer_rate))),
    figureButton("breaches", breachText(f), "breached", was(breachText)),
    figureButton("unanswered", String(f.reports - f.responded), "unanswered", was((p) => String(p.reports - p.responded))),
    // 退单: orders sent back to their platform (shown where the office takes orders).
    f.sent_back || p?.sent_back ? figureButton("sent_back_figure", String(f.sent_back ?? 0), "sent_back", was((p) => String(p.sent_back ?? 0))) : null,
    figureButton("urges_figure", `${f.urges ?? 0} / ${f.urged ?? 0}`, "all", was((p) => `${p.urges ?? 0} / ${p.urged ?? 0}`)),
    figureButton("response_spread", `${span(f.response.median)} / ${span(f.response.p90)} / ${span(f.response.max)}`, "all"),
    figureButton("resolution_spread", `${span(f.resolution.median)} / ${span(f.resolution.p90)}`, "resolved"),
  ].filter(Boolean));
  document.getElementById("by-source").replaceChildren(
    el("strong", {}, labelled(t("satisfaction_by_source"))), (f.by_source ?? []).map(source).join(" · "));
  renderLateNow();
  renderRecurring();
  renderPoints();
  document.getElementById("chart-response").replaceChildren(histogram(summary.response_histogram));
  document.getElementById("chart-daily").replaceChildren(daily(summary.daily));
  document.getElementById("tables").replaceChildren(
    table(t("by_worker"), summary.by_worker, "worker"),
    table(t("by_compound"), summary.by_compound, "compound"),
    table(t("by_category"), summary.by_category, "category"),
    // Where the reports came from: 12345 and the street office's orders count as their own.
    table(t("by_origin"), summary.by_origin ?? [], "origin", (g) => t(`origin_${g.key}`)),
    pauseTable(),
  );
}

/**
 * A wide table in a box that scrolls sideways on a phone: the box takes the keyboard's focus
 * (arrow keys scroll it) and is named for a screen reader.
 */
function scroller(label, attrs, table) {
  return el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": label, ...attrs }, table);
}

/** 挂起记录: every pause asked for in the period, with its reason, who asked and who decided. */
function pauseTable() {
  const head = [t("ticket"), t("pause_reason"), t("asked_by"), t("decided_by"), t("from"), t("to"), t("paused_for")];
  const rows = paused.flatMap((row) => row.pauses.map((p) => ({ row, p })));
  return scroller(t("pauses_title"), { id: "pauses" }, el("table", { class: "grid" },
    el("caption", {}, `${t("pauses_title")} · ${rows.length}`),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map(({ row, p }) => el("tr", {},
      el("th", { scope: "row" }, el("a", { href: "#", onclick: (e) => { e.preventDefault(); showTimeline(row.id); } }, row.ticket)),
      el("td", {}, p.reason), el("td", {}, `${p.asked_by.name} ${formatTime(p.asked_at)}`),
      el("td", {}, p.decided_by ? `${p.decided_by.name}${p.approved ? "" : `（${t("pause_refused")}）`}` : t("pause_waiting")),
      el("td", {}, p.from ? formatTime(p.from) : "—"), el("td", {}, p.to ? formatTime(p.to) : p.from ? `${t("until")} ${formatTime(p.until)}` : "—"),
      el("td", {}, p.from && p.to ? span(p.to - p.from) : "—"))))));
}

/**
 * 每月一题, one line per place: where, what, how often lately (earlier reports count, even before
 * the period) and how many in the period, and the period's tickets (each opens its timeline).
 */
function recurringLines(list, linked = true) {
  return el("ul", { class: "late-list recurring-list" }, list.map((r) => el("li", {},
    `${community.compounds.find((c) => c.id === r.compound)?.name ?? r.compound} ${r.building} · ${categoryName(r.category)} · `,
    labelled(t("recurring_count").replace("{n}", r.lately || r.incidents.length).replace("{m}", r.incidents.length)),
    r.incidents.flatMap((id, n) => [n ? (lang() === "zh" ? "、" : ", ") : "",
      linked ? el("a", { href: "#", onclick: (e) => { e.preventDefault(); showTimeline(id); } }, r.tickets[n]) : r.tickets[n]]))));
}

/** 每月一题: the recurring problems of the period, for the office to take up. */
function renderRecurring() {
  const list = summary.recurring ?? [];
  document.getElementById("recurring").replaceChildren(
    el("h2", {}, `${t("recurring_title")} · ${list.length}`),
    list.length ? recurringLines(list) : el("p", {}, t("no_recurring")));
}

/** 此刻超时: what is late right now, whatever the period, most overdue first. */
function renderLateNow() {
  const now = Date.now();
  const overdue = (row) => now - (row.status === "reported" ? row.respond_by : row.resolve_by);
  const rows = [...lateNow].sort((a, b) => overdue(b) - overdue(a));
  const box = document.getElementById("late-now");
  box.replaceChildren(
    el("h2", {}, `${t("late_now")} · ${count(rows.length, "items")}`),
    rows.length ? el("ul", { class: "late-list" }, rows.slice(0, 20).map((row) => el("li", {},
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); showTimeline(row.id); } }, row.ticket),
      ` ${community.compounds.find((c) => c.id === row.compound)?.name ?? row.compound} · ${categoryName(row.category)} · `,
      `${t(row.status === "reported" ? "left_respond" : "left_resolve")}${t("deadline")} ${formatTime(now - overdue(row))}`,
      overdue(row) > 0 ? `（${t("overdue")} ${span(overdue(row))}）` : "",
      row.holder ? ` · ${row.holder.name}` : ""))) : el("p", {}, t("nothing_late")));
}

/** One group per row; a row's name filters the page by it, unless `named` names it (no filter). */
function table(caption, groups, key, named) {
  const head = [t(key), t("reports"), t("responded_in_target"), t("response_rate"), `${t("response_time")}${t("median")}`, `${t("response_time")}${t("p90")}`, t("resolved"), t("resolution_rate"), t("first_time_rate"), t("open"), t("breaches"), t("satisfaction")];
  return scroller(caption, {}, el("table", { class: "grid" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, groups.map((g) => {
      const f = g.figures;
      return el("tr", {},
        el("th", { scope: "row" }, named ? named(g)
          : el("a", { href: "#", onclick: (e) => { e.preventDefault(); document.getElementById(key).value = g.key; load(); } }, g.label)),
        el("td", {}, String(f.reports)), el("td", {}, String(f.responded_in_target)), el("td", {}, pct(f.response_rate)),
        el("td", {}, span(f.response.median)), el("td", {}, span(f.response.p90)), el("td", {}, String(f.resolved)),
        el("td", {}, pct(f.resolution_rate)), el("td", {}, pct(f.first_time_rate)), el("td", {}, String(f.open)), el("td", {}, breachText(f)), el("td", {}, pct(f.satisfaction_rate)));
    }))));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...kept(children));
  return node;
}

/** Bars of first-response times as a share of their targets; red past the target. */
function histogram(buckets) {
  const w = 480, h = 220, pad = 30, bw = (w - pad) / buckets.length;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const labels = buckets.map((b) => (b.unanswered ? t("unanswered") : b.up_to_percent ? `≤${b.up_to_percent}%` : ">200%"));
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h + 40}`, role: "img", "aria-label": t("chart_response") });
  buckets.forEach((b, i) => {
    const bh = (b.count / max) * (h - 20);
    const x = pad + i * bw + 4;
    const cls = b.unanswered ? "bar none" : b.up_to_percent === null || b.up_to_percent > 100 ? "bar late" : "bar";
    chart.append(
      svg("rect", { class: cls, x, y: h - bh, width: bw - 8, height: bh }),
      svg("text", { x: x + (bw - 8) / 2, y: h - bh - 4, "text-anchor": "middle" }, String(b.count)),
      svg("text", { x: x + (bw - 8) / 2, y: h + 16, "text-anchor": "middle" }, labels[i]),
    );
  });
  const target = pad + 4 * bw;
  chart.append(svg("line", { x1: target, x2: target, y1: 0, y2: h, stroke: "#111", "stroke-dasharray": "4 3" }),
    svg("text", { x: target + 4, y: 12 }, t("target")));
  return chart;
}

/** Reports per day as bars, responses within target as a line. */
function daily(days) {
  const w = 480, h = 220, pad = 30;
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h + 40}`, role: "img", "aria-label": t("chart_daily") });
  if (!days.length) { chart.append(svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle" }, "—")); return chart; }
  const max = Math.max(1, ...days.map((d) => d.reports));
  const bw = (w - pad) / days.length;
  const points = [];
  const goal = [];
  const share = (community.goals?.response_rate ?? 90) / 100;
  days.forEach((d, i) => {
    const x = pad + i * bw;
    const bh = (d.reports / max) * (h - 20);
    const bar = Math.min(40, Math.max(2, bw - 4));
    chart.append(svg("rect", { class: "bar", x: x + (bw - bar) / 2, y: h - bh, width: bar, height: bh }));
    points.push(`${x + bw / 2},${h - (d.responded_in_target / max) * (h - 20)}`);
    // The target line: the day's reports times the office's 响应率 goal.
    goal.push(`${x + bw / 2},${h - ((d.reports * share) / max) * (h - 20)}`);
    if (days.length <= 10 || i % Math.ceil(days.length / 8) === 0) {
      chart.append(svg("text", { x: x + bw / 2, y: h + 16, "text-anchor": "middle" }, dateInput(d.start).slice(5)));
    }
  });
  chart.append(svg("polyline", { class: "line", points: points.join(" ") }),
    svg("polyline", { class: "goal-line", points: goal.join(" ") }));
  return chart;
}

/** The list behind a figure, once opened: `{ key, only, rows }` (drawn again in another language). */
let listed = null;

async function showList(key, only) {
  const r = await fetch(`/api/audit/incidents?${params({ only })}`);
  if (!r.ok) return refuse(r.status);
  listed = { key, only, rows: await r.json() };
  renderList();
  document.getElementById("list-section").scrollIntoView();
}

function renderList() {
  if (!listed) return;
  const { rows } = listed;
  const title = t(listed.key);
  document.getElementById("list-section").hidden = false;
  document.getElementById("list-title").textContent = `${title} · ${count(rows.length, "items")}`;
  const head = [t("ticket"), t("compound"), t("category"), t("origin"), t("reported_at"), t("response_time"), t("status"), t("holder"), t("breaches")];
  document.getElementById("list").replaceChildren(
    el("caption", { class: "visually-hidden" }, title),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {},
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); showTimeline(row.id); } }, row.ticket)),
      el("td", {}, community.compounds.find((c) => c.id === row.compound)?.name ?? row.compound),
      el("td", {}, categoryName(row.category)),
      el("td", {}, row.external_id ? `${t(`origin_${row.origin}`)} ${row.external_id}` : t(`origin_${row.origin}`)),
      el("td", {}, formatTime(row.reported_at)),
      el("td", {}, row.claimed_at ? span(row.claimed_at - row.reported_at) : "—"),
      el("td", {}, t(`status_${row.status}`)),
      el("td", {}, row.holder?.name ?? ""),
      el("td", {}, String(Number(row.response_breached) + Number(row.resolution_breached) + (row.earlier_breaches ?? 0)))))),
  );
}

function categoryName(id) {
  const c = community.categories.find((c) => c.id === id);
  return c ? name(c.name, c.name_en) : id;
}

async function showTimeline(id) {
  const r = await fetch(`/api/audit/incidents/${id}`);
  if (!r.ok) return refuse(r.status);
  const { incident, events } = await r.json();
  const answered = (c) => `${t(c.solved === false ? "solved_no" : "solved_yes")} · ${t(c.rating)}`;
  // An escalation's reason is a code: said in words ("（超时无人接单）").
  const describe = (c) => (c.type === "escalated" ? t(`reason_${c.reason ?? "nobody_on_duty"}`) : "") || c.text || c.note || c.outcome || c.reason || c.to?.name || (c.deadline ? `${t("deadline")} ${formatTime(c.deadline)}` : "") || (c.rating ? answered(c) : "");
  document.getElementById("timeline").replaceChildren(
    el("h2", {}, `${incident.ticket} · ${categoryName(incident.report.category)}`,
      incident.report.order ? ` · ${t(`order_${incident.report.order.source}`)} ${incident.report.order.external_id}` : ""),
    el("p", {}, incident.report.description),
    el("ol", { class: "timeline-list" }, events.map(({ event, elapsed }) => el("li", { class: event.change.type === "breached" ? "breach" : "" },
      `${formatTime(event.at)} (+${span(elapsed)}) · ${event.actor.name} · ${t(`change_${event.change.type}`)} ${describe(event.change)}`,
      // 影像证明: the photo of the result, beside its 办结.
      event.change.proof ? el("a", { class: "proof", href: `/api/incidents/${incident.id}/attachments/${event.change.proof.id}`, target: "_blank", rel: "noopener" },
        el("img", { src: `/api/incidents/${incident.id}/attachments/${event.change.proof.id}`, alt: `${t("proof_photo")} ${incident.ticket}` })) : null))),
  );
  document.getElementById("timeline-dialog").showModal();
}

// ---- 楼长积分: standings by month, corrections with a reason, the 5·20 楼长节 list ----

let points = null;

async function loadPoints() {
  const year = document.getElementById("points-year").value;
  const r = await fetch(`/api/points?year=${year}`);
  if (!r.ok) return;
  points = await r.json();
  document.getElementById("points").hidden = false;
  document.getElementById("points-export").href = `/api/points/export?year=${year}`;
  renderPoints();
}

function renderPoints() {
  if (!points) return;
  const months = Array.from({ length: 12 }, (_, m) => t("month_n").replace("{m}", m + 1));
  document.getElementById("standings").replaceChildren(
    el("caption", { id: "standings-caption" }, `${t("points_standings").replace("{y}", points.year)}`),
    el("thead", {}, el("tr", {}, [t("rank"), t("building_head"), ...months, t("whole_year")].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, points.standings.map((s, n) => el("tr", {},
      el("td", {}, String(n + 1)), el("th", { scope: "row" }, s.head.name),
      s.months.map((p) => el("td", {}, p ? String(p) : "")), el("td", {}, el("strong", {}, String(s.year)))))));
  document.getElementById("ledger").replaceChildren(...[...points.ledger].reverse().map((e) =>
    el("li", {}, `${formatTime(e.at)} · ${e.award.head.name} ${e.award.points > 0 ? "+" : ""}${e.award.points} · ${t(`rule_${e.award.rule}`)} · ${e.award.reason}${e.award.incident ? ` · ${String(e.award.incident).padStart(4, "0")}` : ""} · ${e.by.name}`)));
}

async function adjust(e) {
  e.preventDefault();
  const error = document.getElementById("adjust-error");
  error.textContent = "";
  const body = { head: document.getElementById("adjust-head").value, points: Number(document.getElementById("adjust-points").value), reason: document.getElementById("adjust-reason").value.trim() };
  const r = await fetch("/api/points", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) { error.textContent = (await r.json().catch(() => null))?.message_zh ?? t("offline"); return; }
  document.getElementById("adjust").reset();
  await loadPoints();
}

/** 5·20 楼长节: the year's list, one A4 page, for the festival. */
function printFestival() {
  document.getElementById("festival").replaceChildren(el("section", { class: "report-page" },
    el("h2", {}, `${community.name} · ${t("festival_title").replace("{y}", points.year)}`),
    el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, [t("rank"), t("building_head"), t("whole_year"), t("awards")].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, points.standings.map((s, n) => el("tr", {}, el("td", {}, String(n + 1)), el("th", { scope: "row" }, s.head.name), el("td", {}, String(s.year)), el("td", {}, String(s.awards)))))),
    el("p", { class: "report-foot" }, `${community.street_office} · ${t("printed_at")} ${formatTime(Date.now())}`)));
  document.body.classList.add("festival-ready");
  window.print();
}
window.addEventListener("afterprint", () => document.body.classList.remove("festival-ready"));

// ---- 月报: the printable monthly report for the street office ----

/** The calendar month (Asia/Shanghai) the period starts in. */
function monthOf(ms) {
  const d = new Date(ms + SHANGHAI);
  const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) - SHANGHAI;
  const to = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - SHANGHAI;
  return { from, to, year: d.getUTCFullYear(), month: d.getUTCMonth() + 1 };
}

function reportPage(compound, s, month) {
  const f = s.figures;
  const rows = [
    ["reports", String(f.reports)], ["response_rate", pct(f.response_rate)], ["resolution_rate", pct(f.resolution_rate)],
    ["resolved_in_target", pct(f.resolved_in_target_rate)], ["first_time_rate", pct(f.first_time_rate)],
    ["second_handlings", String(f.second_handlings ?? 0)], ["satisfaction", pct(f.satisfaction_rate)],
    ["answer_rate", pct(f.answer_rate)], ["breaches", breachText(f)], ["urges_figure", `${f.urges ?? 0} / ${f.urged ?? 0}`],
    ["response_spread", `${span(f.response.median)} / ${span(f.response.p90)} / ${span(f.response.max)}`],
  ];
  // A month not over yet says so: its figures are up to today.
  const partial = month.to > Date.now();
  return el("section", { class: "report-page", "aria-label": compound.name },
    el("h2", {}, `${community.name} · ${compound.name}`),
    el("p", { class: "report-sub" }, `${t("monthly_report")} · ${t("month_of").replace("{y}", month.year).replace("{m}", month.month)} · ${community.street_office}`),
    partial ? el("p", { class: "report-partial" }, t("partial_month").replace("{d}", formatTime(Date.now()))) : null,
    el("table", { class: "grid" }, el("caption", {}, t("key_figures")),
      el("tbody", {}, rows.map(([key, value]) => el("tr", {}, el("th", { scope: "row" }, t(key)), el("td", {}, value), el("td", { class: "definition" }, t(`${key}_def`)))))),
    el("table", { class: "grid" }, el("caption", {}, t("by_category")),
      el("thead", {}, el("tr", {}, [t("category"), t("reports"), t("response_rate"), t("resolution_rate"), t("satisfaction")].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, s.by_category.map((g) => el("tr", {}, el("th", { scope: "row" }, categoryName(g.key)),
        el("td", {}, String(g.figures.reports)), el("td", {}, pct(g.figures.response_rate)), el("td", {}, pct(g.figures.resolution_rate)), el("td", {}, pct(g.figures.satisfaction_rate)))))),
    el("section", { class: "report-recurring" },
      el("h3", {}, t("recurring_title")),
      s.recurring?.length ? recurringLines(s.recurring, false) : el("p", {}, t("no_recurring"))),
    el("p", { class: "report-foot" }, `${t("printed_at")} ${formatTime(Date.now())}`));
}

/** One page per compound of the month the period starts in, then the browser's print (to PDF). */
async function printReport() {
  const month = monthOf(range()[0]);
  const pages = [];
  for (const compound of community.compounds.filter((c) => identity.compounds.includes(c.id))) {
    const q = new URLSearchParams({ from: month.from, to: month.to, compound: compound.id });
    const r = await fetch(`/api/audit/summary?${q}`);
    if (r.ok) pages.push(reportPage(compound, await r.json(), month));
  }
  document.getElementById("report").replaceChildren(...pages);
  document.body.classList.add("report-ready");
  window.print();
}
window.addEventListener("afterprint", () => document.body.classList.remove("report-ready"));

function refuse(status) {
  if (status === 401) { location.href = "/login?next=/audit"; return; }
  document.getElementById("controls").hidden = true;
  document.querySelector(".charts").hidden = true;
  const box = document.getElementById("refused");
  box.hidden = false;
  box.textContent = t("supervisors_only");
}

function options(select, entries) {
  select.replaceChildren(el("option", { value: "" }, t("all")), ...entries.map(([value, label]) => el("option", { value }, label)));
}

async function main() {
  applyI18n();
  identity = await me();
  if (!identity || identity.must_change_password) return refuse(401);
  document.getElementById("who").textContent = identity.name;
  if (identity.role !== "supervisor") return refuse(403);
  // A street office's supervisor audits every community they run: their compounds and
  // categories together.
  const ids = identity.communities?.length ? identity.communities : [identity.community];
  const all = await Promise.all(ids.map((id) => fetch(`/api/community?id=${encodeURIComponent(id)}`).then((r) => r.json())));
  community = { ...all[0], compounds: all.flatMap((c) => c.compounds), categories: all.flatMap((c) => c.categories).filter((c, i, list) => list.findIndex((d) => d.id === c.id) === i) };
  document.getElementById("controls").hidden = false;
  // A compound leader (网格长) audits their compounds only.
  const mine = community.compounds.filter((c) => identity.compounds.includes(c.id));
  options(document.getElementById("compound"), mine.map((c) => [c.id, c.name]));
  options(document.getElementById("category"), community.categories.map((c) => [c.id, name(c.name, c.name_en)]));
  const workers = await fetch("/api/workers").then((r) => (r.ok ? r.json() : []));
  options(document.getElementById("worker"), workers.map((w) => [w.id, w.name]));
  for (const b of document.querySelectorAll("[data-period]")) b.addEventListener("click", () => { period = b.dataset.period; load(); });
  for (const id of ["from", "to"]) document.getElementById(id).addEventListener("change", () => { period = "custom"; load(); });
  for (const id of ["compound", "worker", "category"]) document.getElementById(id).addEventListener("change", load);
  document.getElementById("lang").addEventListener("click", () => toggleLang(() => {
    // Everything on the page in the language chosen: the filters' "全部" and categories too.
    for (const id of ["compound", "worker", "category"]) document.getElementById(id).options[0].textContent = t("all");
    for (const option of document.getElementById("category").options) {
      const c = community.categories.find((c) => c.id === option.value);
      if (c) option.textContent = name(c.name, c.name_en);
    }
    render();
    renderList();
  }));
  document.getElementById("print-report").addEventListener("click", printReport);
  const thisYear = new Date(Date.now() + SHANGHAI).getUTCFullYear();
  document.getElementById("points-year").replaceChildren(...[thisYear, thisYear - 1].map((y) => el("option", { value: y }, String(y))));
  document.getElementById("points-year").addEventListener("change", loadPoints);
  document.getElementById("adjust").addEventListener("submit", adjust);
  document.getElementById("print-points").addEventListener("click", printFestival);
  const heads = await fetch("/api/admin/people").then((r) => (r.ok ? r.json() : [])).catch(() => []);
  document.getElementById("adjust-head").replaceChildren(...heads.filter((p) => p.role === "building_head" && !p.disabled).map((p) => el("option", { value: p.login }, p.name)));
  loadPoints();
  await load();
  // Opened from a board's link to an earlier report (`/audit#incident=12`).
  const asked = /^#incident=(\d+)$/.exec(location.hash);
  if (asked) showTimeline(Number(asked[1]));
}
main();
