// The duty rota (排班) of a compound: each weekday's shifts, who answers at other times (nights,
// weekends), and dates that replace a weekday (holidays, swaps). It decides who is alerted; a
// worker's own switch on the board overrides it until their next change of shift.

import { t } from "./i18n.js";
import { el } from "./format.js";
import { api, clock, compoundName, field, minutesOf } from "./admin-kit.js";

let chosen = null; // the compound shown, kept across tabs

function managed(office) {
  const all = office.community.compounds;
  return office.identity.everything ? all : all.filter((c) => office.identity.compounds.includes(c.id));
}

export async function render(panel, office) {
  const compounds = managed(office);
  if (!compounds.some((c) => c.id === chosen)) chosen = compounds[0]?.id;
  const view = await api("GET", `/api/admin/rota/${encodeURIComponent(chosen)}`);
  // Edited in place, sent whole on saving.
  const rota = structuredClone(view.rota);
  const select = el("select", { id: "rota-compound", onchange: (e) => { chosen = e.target.value; render(panel, office); } },
    compounds.map((c) => el("option", { value: c.id, selected: c.id === chosen }, c.name)));
  const names = new Map(view.workers.map((w) => [w.login, w.name]));
  const editor = el("div", { class: "rota-editor" });
  const message = el("p", { role: "status", class: "saved-text" });
  const error = el("p", { class: "error-text", role: "alert" });
  const redraw = () => editor.replaceChildren(...editorParts(rota, view.workers, redraw));
  redraw();
  panel.replaceChildren(
    el("div", { class: "panel-head" }, el("h2", {}, t("tab_rota")), field(t("rota_for"), select)),
    el("p", { id: "on-duty-now" }, `${t("on_duty_now")}: `,
      view.on_duty.length
        ? view.on_duty.map((d) => `${names.get(d.worker.id) ?? d.worker.name}（${d.manual ? t("by_hand") : t("by_rota")}）`).join("、")
        : t("nobody")),
    editor,
    error,
    message,
    el("div", { class: "actions" }, el("button", { type: "button", class: "primary", id: "save-rota", onclick: async () => {
      error.textContent = "";
      message.textContent = "";
      try {
        await api("PUT", `/api/admin/rota/${encodeURIComponent(chosen)}`, rota);
        // Drawn again from what the server now holds, with who is on duty by it.
        await render(panel, office);
        panel.querySelector(".saved-text").textContent = `${compoundName(office.community, chosen)}：${t("rota_saved")}`;
      } catch (problem) {
        error.textContent = problem.message;
      }
    } }, t("save"))),
  );
}

/** One shift's row: its hours and its workers, bound to `shift`. */
function shiftRow(shift, workers, remove, label) {
  const from = el("input", { type: "time", value: clock(shift.from), required: true, "aria-label": `${label} ${t("shift_from")}`,
    onchange: (e) => { shift.from = minutesOf(e.target.value); } });
  // A shift to midnight ends at 24:00, which a time input writes 00:00.
  const to = el("input", { type: "time", value: clock(shift.to % 1440), required: true, "aria-label": `${label} ${t("shift_to")}`,
    onchange: (e) => { shift.to = minutesOf(e.target.value) || 1440; } });
  const who = el("span", { class: "checks inline" }, workers.map((w) => el("label", {},
    el("input", { type: "checkbox", checked: shift.workers.includes(w.login), onchange: (e) => {
      shift.workers = e.target.checked ? [...shift.workers, w.login] : shift.workers.filter((x) => x !== w.login);
    } }), " ", w.name)));
  return el("li", { class: "shift" }, from, "–", to, who,
    el("button", { type: "button", class: "remove", onclick: remove }, t("remove")));
}

/** The shifts of one day (a weekday or a date), with a button to add one. */
function shiftList(shifts, workers, redraw, label) {
  return [
    shifts.length
      ? el("ul", { class: "shifts" }, shifts.map((shift, i) => shiftRow(shift, workers, () => { shifts.splice(i, 1); redraw(); }, label)))
      : el("p", { class: "muted" }, t("no_shift")),
    el("button", { type: "button", class: "add-shift", onclick: () => {
      const last = shifts[shifts.length - 1];
      shifts.push(last ? { from: last.to % 1440, to: Math.min(1440, (last.to % 1440) + 240), workers: [] } : { from: 510, to: 1050, workers: [] });
      redraw();
    } }, t("add_shift")),
  ];
}

function editorParts(rota, workers, redraw) {
  const days = rota.week.map((shifts, day) => el("section", { class: "day", dataset: { day: String(day) } },
    el("h3", {}, t(`weekday_${day}`)), ...shiftList(shifts, workers, redraw, t(`weekday_${day}`))));
  const otherwise = el("fieldset", { class: "checks", id: "otherwise" }, el("legend", {}, t("otherwise")),
    workers.map((w) => el("label", {}, el("input", { type: "checkbox", checked: rota.otherwise.includes(w.login), onchange: (e) => {
      rota.otherwise = e.target.checked ? [...rota.otherwise, w.login] : rota.otherwise.filter((x) => x !== w.login);
    } }), " ", w.name)));
  const dates = Object.keys(rota.dates).sort().map((date) => el("section", { class: "day" },
    el("h3", {}, date, " ", el("button", { type: "button", class: "remove", onclick: () => { delete rota.dates[date]; redraw(); } }, t("remove"))),
    ...shiftList(rota.dates[date], workers, redraw, date)));
  const newDate = el("input", { type: "date", id: "new-date", "aria-label": t("date") });
  return [
    el("div", { class: "week" }, days),
    otherwise,
    el("h3", {}, t("dates")),
    el("div", { class: "week" }, dates),
    el("div", { class: "add-date" }, newDate, el("button", { type: "button", onclick: () => {
      if (newDate.value && !rota.dates[newDate.value]) { rota.dates[newDate.value] = []; redraw(); }
    } }, t("add_date"))),
  ];
}
