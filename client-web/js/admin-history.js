// The history of the office: every change to people, kiosks, rotas, the community and the API
// keys, newest first, with who made it and, in words, what it was before and after (never a
// password). The building heads' points and patrols (many, and read on the audit page) only
// when asked for.

import { labelled, name, t } from "./i18n.js";
import { el, formatTime } from "./format.js";
import { api, clock, compoundName, durationText, roleName } from "./admin-kit.js";

const PAGE = 50;

/** What a change was, in a few words. */
function summary(change, community) {
  switch (change.type) {
    case "person": return `${t(change.before ? "h_person_changed" : "h_person_added")} · ${change.after.name}（${change.after.login}）`;
    case "kiosk": return `${t(change.before ? "h_kiosk_changed" : "h_kiosk_added")} · ${change.after.name}（${change.after.id}）`;
    case "rota": return `${t("h_rota")} · ${compoundName(community, change.compound)}`;
    case "community": return t("h_community");
    case "award": return `${t("h_award")} · ${change.head.name} ${change.points > 0 ? "+" : ""}${change.points} · ${t(`rule_${change.rule}`)}`;
    case "patrol": return `${t("h_patrol")} · ${list(change.buildings)}`;
    case "api_key": return `${t(change.after.revoked ? "h_key_changed" : "h_key_added")} · ${change.after.name}（${change.after.id}）`;
    default: return t("h_other");
  }
}

const yes = (v) => (v ? "✓" : "—");
const list = (values) => (values?.length ? values.join("、") : "—");

/** `[label, before, after]` for each field that differs, as a person reads it. */
function fieldLines(fields, before, after) {
  return fields
    .map(([label, read]) => [label, before ? read(before) : null, read(after)])
    .filter(([, b, a]) => b !== a);
}

function personLines(community, before, after) {
  return fieldLines([
    [t("name"), (p) => p.name],
    [t("role"), (p) => roleName(p.role, p.compounds)],
    [t("compounds"), (p) => list(p.compounds.map((c) => compoundName(community, c)))],
    [t("buildings"), (p) => list(p.buildings)],
    [t("disabled"), (p) => yes(p.disabled)],
    [t("must_change"), (p) => yes(p.must_change_password)],
  ], before, after);
}

function kioskLines(community, before, after) {
  return fieldLines([
    [t("kiosk_name"), (k) => k.name],
    [t("compound"), (k) => compoundName(community, k.compound)],
    [t("revoked"), (k) => yes(k.revoked)],
    [t("pairing_title"), (k) => (k.pairing ? `${t("expires")} ${formatTime(k.pairing.expires)}` : "—")],
  ], before, after);
}

function shiftsText(shifts, names) {
  if (!shifts?.length) return t("no_shift");
  return shifts.map((s) => `${clock(s.from)}–${clock(s.to)} ${list(s.workers.map((w) => names.get(w) ?? w))}`).join("；");
}

function rotaLines(names, before, after) {
  const empty = { week: [[], [], [], [], [], [], []], otherwise: [], dates: {} };
  const b = before ?? empty;
  const lines = after.week
    .map((shifts, day) => [t(`weekday_${day}`), shiftsText(b.week[day], names), shiftsText(shifts, names)]);
  lines.push([t("otherwise"), list(b.otherwise.map((w) => names.get(w) ?? w)), list(after.otherwise.map((w) => names.get(w) ?? w))]);
  const dates = [...new Set([...Object.keys(b.dates), ...Object.keys(after.dates)])].sort();
  for (const date of dates) {
    lines.push([date, date in b.dates ? shiftsText(b.dates[date], names) : "—", date in after.dates ? shiftsText(after.dates[date], names) : "—"]);
  }
  return lines.filter(([, x, y]) => x !== y);
}

const targetText = (c) => ["normal", "urgent"]
  .map((u) => `${t(u)} ${durationText(c.targets[u].respond)} / ${durationText(c.targets[u].resolve)}`).join("；");

function communityLines(before, after) {
  const lines = fieldLines([
    [t("community_name"), (c) => c.name],
    [t("street_office"), (c) => c.street_office],
    [t("escalation_after"), (c) => durationText(c.escalation.unclaimed_after)],
  ], before, after);
  for (const compound of after.compounds) {
    const old = before?.compounds.find((c) => c.id === compound.id);
    const buildings = (c) => list(c.buildings.map((b) => (b.units.length ? `${b.name}（${b.units.join("、")}）` : b.name)));
    lines.push(...fieldLines([
      [`${compound.name} · ${t("compound")}`, (c) => c.name],
      [`${compound.name} · ${t("station")}`, (c) => c.station],
      [`${compound.name} · ${t("grid")}`, (c) => c.grid],
      [`${compound.name} · ${t("buildings")}`, buildings],
    ], old, compound));
  }
  for (const category of after.categories) {
    const old = before?.categories.find((c) => c.id === category.id);
    const label = `${category.icon} ${name(category.name, category.name_en)}`;
    if (before && !old) {
      lines.push([`${t("add_category")}（${category.id}）`, null, `${label} · ${targetText(category)}`]);
      continue;
    }
    lines.push(...fieldLines([
      [`${label} · ${t("named")}`, (c) => `${c.name} / ${c.name_en}`],
      [`${label} · ${t("target")}`, targetText],
      [`${label} · ${t("private")}`, (c) => yes(c.private)],
      [`${label} · ${t("retired")}`, (c) => yes(c.retired)],
      [`${label} · ${t("phrases")}`, (c) => list(c.phrases)],
    ], old, category));
  }
  return lines;
}

/** What changed, line by line: "label: before → after" (just "after" for an addition). */
function differences(change, community, names) {
  const { before, after } = change;
  const lines = {
    person: () => personLines(community, before, after),
    kiosk: () => kioskLines(community, before, after),
    rota: () => rotaLines(names, before, after),
    community: () => communityLines(before, after),
    award: () => [[t("reason"), null, change.reason || "—"], ...(change.incident ? [[t("ticket"), null, String(change.incident).padStart(4, "0")]] : [])],
    patrol: () => [[t("patrol_checked"), null, change.checked || "—"], [t("patrol_found"), null, change.found || "—"]],
    api_key: () => fieldLines([[t("key_holder"), (k) => k.name], [t("revoked"), (k) => yes(k.revoked)]], before, after),
  }[change.type]?.() ?? [];
  return lines.map(([label, b, a]) => el("li", {}, el("strong", {}, labelled(label)),
    b === null ? a : el("span", {}, el("del", {}, b), " → ", el("ins", {}, a))));
}

function row(event, community, names) {
  return el("li", { class: "history-item", dataset: { seq: String(event.seq) } },
    el("div", { class: "top" },
      el("span", {}, formatTime(event.at)),
      el("span", { class: "actor" }, `${event.actor.name}（${roleName(event.actor.role)}）`)),
    el("div", { class: "what" }, summary(event.change, community)),
    el("details", {}, el("summary", {}, t("details")), el("ul", {}, differences(event.change, community, names))));
}

export async function render(panel, office) {
  const people = await api("GET", "/api/admin/people");
  const names = new Map(people.map((p) => [p.login, p.name]));
  const entries = el("ol", { class: "history", id: "history" });
  const more = el("button", { type: "button", id: "more" }, t("more"));
  const points = el("input", { type: "checkbox", id: "show-points" });
  let oldest = null;
  const load = async () => {
    const also = points.checked ? "&points=true" : "";
    const page = await api("GET", `/api/admin/history?limit=${PAGE}${also}${oldest ? `&before=${oldest}` : ""}`);
    entries.append(...page.map((event) => row(event, office.community, names)));
    if (page.length) oldest = page[page.length - 1].seq;
    more.hidden = page.length < PAGE;
  };
  more.addEventListener("click", load);
  points.addEventListener("change", () => { oldest = null; entries.replaceChildren(); load(); });
  panel.replaceChildren(
    el("h2", {}, t("tab_history")),
    el("p", { class: "hint" }, t("points_on_audit")),
    el("label", { class: "check" }, points, ` ${t("show_points")}`),
    entries, more);
  await load();
}
