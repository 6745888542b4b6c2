// The supervisors' audit: figures for a period and filters, per worker, compound and category,
// two SVG charts, the incidents behind any figure and each one's full timeline, and exports.

import { me } from "./connection.js";
import { applyI18n, name, t, toggleLang } from "./i18n.js";
import { el, formatSpan, formatTime } from "./format.js";

const SHANGHAI = 8 * 3600_000;
const DAY = 86400_000;
let identity = null;
let community = null;
let summary = null;
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
  document.getElementById("export-incidents").href = `/api/audit/export?${params({ format: "csv", what: "incidents" })}`;
  document.getElementById("export-figures").href = `/api/audit/export?${params({ format: "csv", what: "figures" })}`;
  document.getElementById("export-json").href = `/api/audit/export?${params({ format: "json", what: "figures" })}`;
  render();
}

const pct = (rate) => (rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`);
const span = (ms) => (ms === null || ms === undefined ? "—" : formatSpan(ms));

function figureButton(label, value, only) {
  return el("button", { type: "button", class: "figure", onclick: () => showList(label, only) }, label, el("strong", {}, value));
}

function render() {
  applyI18n();
  const f = summary.figures;
  document.getElementById("figures").replaceChildren(
    figureButton(t("reports"), String(f.reports), "all"),
    figureButton(t("response_rate"), pct(f.response_rate), "late_response"),
    figureButton(t("resolution_rate"), pct(f.resolution_rate), "open"),
    figureButton(t("resolved_in_target"), pct(f.resolved_in_target_rate), "resolved"),
    figureButton(t("satisfaction"), pct(f.satisfaction_rate), "dissatisfied"),
    figureButton(t("breaches"), String(f.breaches), "breached"),
    figureButton(t("unanswered"), String(f.reports - f.responded), "unanswered"),
    figureButton(t("urges_figure"), `${f.urges ?? 0} / ${f.urged ?? 0}`, "all"),
    figureButton(`${t("response_time")} ${t("median")} / P90 / ${t("max")}`, `${span(f.response.median)} / ${span(f.response.p90)} / ${span(f.response.max)}`, "all"),
    figureButton(`${t("resolution_time")} ${t("median")} / P90`, `${span(f.resolution.median)} / ${span(f.resolution.p90)}`, "resolved"),
  );
  document.getElementById("chart-response").replaceChildren(histogram(summary.response_histogram));
  document.getElementById("chart-daily").replaceChildren(daily(summary.daily));
  document.getElementById("tables").replaceChildren(
    table(t("by_worker"), summary.by_worker, "worker"),
    table(t("by_compound"), summary.by_compound, "compound"),
    table(t("by_category"), summary.by_category, "category"),
  );
}

function table(caption, groups, key) {
  const head = [t(key), t("reports"), t("responded_in_target"), t("response_rate"), `${t("response_time")} ${t("median")}`, "P90", t("resolved"), t("resolution_rate"), t("open"), t("breaches"), t("satisfaction")];
  return el("table", { class: "grid" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, groups.map((g) => {
      const f = g.figures;
      return el("tr", {},
        el("th", { scope: "row" }, el("a", { href: "#", onclick: (e) => { e.preventDefault(); document.getElementById(key).value = g.key; load(); } }, g.label)),
        el("td", {}, String(f.reports)), el("td", {}, String(f.responded_in_target)), el("td", {}, pct(f.response_rate)),
        el("td", {}, span(f.response.median)), el("td", {}, span(f.response.p90)), el("td", {}, String(f.resolved)),
        el("td", {}, pct(f.resolution_rate)), el("td", {}, String(f.open)), el("td", {}, String(f.breaches)), el("td", {}, pct(f.satisfaction_rate)));
    })));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
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
  days.forEach((d, i) => {
    const x = pad + i * bw;
    const bh = (d.reports / max) * (h - 20);
    const bar = Math.min(40, Math.max(2, bw - 4));
    chart.append(svg("rect", { class: "bar", x: x + (bw - bar) / 2, y: h - bh, width: bar, height: bh }));
    points.push(`${x + bw / 2},${h - (d.responded_in_target / max) * (h - 20)}`);
    if (days.length <= 10 || i % Math.ceil(days.length / 8) === 0) {
      chart.append(svg("text", { x: x + bw / 2, y: h + 16, "text-anchor": "middle" }, dateInput(d.start).slice(5)));
    }
  });
  chart.append(svg("polyline", { class: "line", points: points.join(" ") }));
  return chart;
}

async function showList(title, only) {
  const r = await fetch(`/api/audit/incidents?${params({ only })}`);
  if (!r.ok) return refuse(r.status);
  const rows = await r.json();
  document.getElementById("list-section").hidden = false;
  document.getElementById("list-title").textContent = `${title} · ${rows.length}`;
  const head = [t("ticket"), t("compound"), t("category"), t("reported_at"), t("response_time"), t("status"), t("holder"), t("breaches")];
  document.getElementById("list").replaceChildren(
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {},
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); showTimeline(row.id); } }, row.ticket)),
      el("td", {}, community.compounds.find((c) => c.id === row.compound)?.name ?? row.compound),
      el("td", {}, categoryName(row.category)),
      el("td", {}, formatTime(row.reported_at)),
      el("td", {}, row.claimed_at ? formatSpan(row.claimed_at - row.reported_at) : "—"),
      el("td", {}, t(`status_${row.status}`)),
      el("td", {}, row.holder?.name ?? ""),
      el("td", {}, String(Number(row.response_breached) + Number(row.resolution_breached)))))),
  );
  document.getElementById("list-section").scrollIntoView();
}

function categoryName(id) {
  const c = community.categories.find((c) => c.id === id);
  return c ? name(c.name, c.name_en) : id;
}

async function showTimeline(id) {
  const r = await fetch(`/api/audit/incidents/${id}`);
  if (!r.ok) return refuse(r.status);
  const { incident, events } = await r.json();
  const describe = (c) => c.text || c.note || c.outcome || c.reason || c.to?.name || (c.deadline ? `${t("deadline")} ${formatTime(c.deadline)}` : "") || (c.rating ? t(c.rating) : "");
  document.getElementById("timeline").replaceChildren(
    el("h2", {}, `${incident.ticket} · ${categoryName(incident.report.category)}`),
    el("p", {}, incident.report.description),
    el("ol", { class: "timeline-list" }, events.map(({ event, elapsed }) => el("li", { class: event.change.type === "breached" ? "breach" : "" },
      `${formatTime(event.at)} (+${formatSpan(elapsed)}) · ${event.actor.name} · ${t(`change_${event.change.type}`)} ${describe(event.change)}`,
      // 影像证明: the photo of the result, beside its 办结.
      event.change.proof ? el("a", { class: "proof", href: `/api/incidents/${incident.id}/attachments/${event.change.proof.id}`, target: "_blank", rel: "noopener" },
        el("img", { src: `/api/incidents/${incident.id}/attachments/${event.change.proof.id}`, alt: `${t("proof_photo")} ${incident.ticket}` })) : null))),
  );
  document.getElementById("timeline-dialog").showModal();
}

function refuse(status) {
  if (status === 401) { location.href = "/login?next=/audit"; return; }
  document.getElementById("controls").hidden = true;
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
  const hello = await fetch("/api/community").then((r) => r.json());
  community = hello;
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
  document.getElementById("lang").addEventListener("click", () => toggleLang(() => render()));
  await load();
}
main();
