// What every tab of the admin page shares: the API with its refusals in the reader's language,
// one dialog, and the names of roles, compounds and times.

import { durationWords, lang, name, t } from "./i18n.js";
import { durationParts, el } from "./format.js";

/** A refusal from the server, ready to show. */
export class Problem extends Error {
  constructor(message, code) { super(message); this.code = code; }
}

/** Calls the admin API: the answer's JSON, or a `Problem` saying why not. */
export async function api(method, path, body) {
  let r;
  try {
    r = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Problem(t("offline"));
  }
  if (r.status === 401) {
    location.href = `/login?next=${encodeURIComponent(`/admin${location.hash}`)}`;
    throw new Problem(t("login"));
  }
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const zh = data?.message_zh;
    // The rota's and the community's rules name what is wrong only in the English message.
    const detailed = ["bad_rota", "bad_community", "bad_body"].includes(data?.code);
    const message = lang() === "zh" && zh ? (detailed ? `${zh}：${data.message}` : zh) : data?.message ?? String(r.status);
    throw new Problem(message, data?.code);
  }
  return data;
}

const dialog = () => document.getElementById("dialog");

/**
 * Shows `content` in the page's dialog with a title and buttons; `onSubmit` runs on the
 * primary button and may throw a `Problem`, shown in the dialog, which then stays open.
 */
export function openDialog(title, content, { submit, onSubmit } = {}) {
  const error = el("p", { class: "error-text", role: "alert" });
  const form = el("form", { class: "stack wide", method: "dialog" },
    el("h2", { id: "dialog-title" }, title), content, error,
    el("div", { class: "actions" },
      el("button", { type: "button", onclick: () => dialog().close() }, t("close")),
      onSubmit ? el("button", { type: "submit", class: "primary" }, submit ?? t("save")) : null));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!onSubmit) { dialog().close(); return; }
    error.textContent = "";
    try {
      await onSubmit();
    } catch (problem) {
      error.textContent = problem.message;
    }
  });
  document.getElementById("dialog-body").replaceChildren(form);
  dialog().showModal();
  return form;
}

export function closeDialog() { dialog().close(); }

/** Asks to go on; resolves true only on the confirming button. */
export function confirmDialog(title, text, button) {
  return new Promise((resolve) => {
    let answered = false;
    openDialog(title, el("p", {}, text), {
      submit: button,
      onSubmit: async () => { answered = true; closeDialog(); resolve(true); },
    });
    dialog().addEventListener("close", () => { if (!answered) resolve(false); }, { once: true });
  });
}

/**
 * A table of `rows` (each `{ data, cells }`, the first cell a row header) under `headers`;
 * every cell carries its header, which a phone shows beside it instead of the columns.
 */
export function table(id, headers, rows) {
  return el("div", { class: "scroll" }, el("table", { class: "grid admin-table", id },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map(({ data, cells }) => el("tr", { dataset: data },
      cells.map((cell, i) => el(i === 0 ? "th" : "td", { scope: i === 0 ? "row" : null, "data-label": headers[i], class: cell?.className }, cell?.content ?? cell)))))));
}

/** A labelled field: `<label><span>…</span><input></label>`. */
export function field(label, input, hint) {
  return el("label", {}, el("span", {}, label), input, hint ? el("small", { class: "hint" }, hint) : null);
}

/** A group of checkboxes, one per `[value, label]`, `checked` ones ticked; read with `checkedIn`. */
export function checkboxes(legend, name, entries, checked) {
  return el("fieldset", { class: "checks" }, el("legend", {}, legend),
    entries.map(([value, label]) => el("label", {},
      el("input", { type: "checkbox", name, value, checked: checked.includes(value) }), " ", label)));
}

export function checkedIn(root, name) {
  return [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

/** A role as people in the office say it: a supervisor with compounds is a 网格长. */
export function roleName(role, compounds = []) {
  if (role === "supervisor" && compounds.length) return t("role_leader");
  return t(`role_${role}`);
}

export function compoundName(community, id) {
  return community.compounds.find((c) => c.id === id)?.name ?? id;
}

export function categoryName(community, id) {
  const c = community.categories.find((c) => c.id === id);
  return c ? name(c.name, c.name_en) : id;
}

/** 510 → "08:30". */
export function clock(minutes) {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

/** "08:30" → 510; "24:00" → 1440. */
export function minutesOf(value) {
  const [h, m] = value.split(":").map(Number);
  return h * 60 + m;
}

/** 1 800 000 → "30 分钟" (or "30 minutes"). */
export const durationText = durationWords;

const UNIT_MS = { minutes: 60000, hours: 3600000, days: 86400000 };

/** An input for a duration (number and unit); `.value` of the returned element reads it back. */
export function durationInput(label, ms) {
  const [amount, unit] = durationParts(ms);
  const number = el("input", { type: "number", min: "1", step: "1", required: true, value: String(amount), "aria-label": label });
  const select = el("select", { "aria-label": `${label} · ${t("minutes")}/${t("hours")}/${t("days")}` },
    ["minutes", "hours", "days"].map((u) => el("option", { value: u, selected: u === unit }, t(u))));
  const box = el("span", { class: "duration" }, number, select);
  Object.defineProperty(box, "value", { get: () => Number(number.value) * UNIT_MS[select.value] });
  return el("label", { class: "duration-field" }, el("span", {}, label), box);
}

/** The duration an element made by `durationInput` holds. */
export function durationOf(label) { return label.querySelector(".duration").value; }
