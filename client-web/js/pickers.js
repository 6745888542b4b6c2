// The taps-only pickers of a report — the category as tiles, what happened (the category's
// phrases), where (building and unit), room and phone on an on-screen keypad, how urgent — drawn
// from one draft. The kiosk and a building head's 代报 on the board use these same pieces, so a
// resident's report and one made for them ask the same things in the same way, and store the
// same words: what is stored is in the office's language (Chinese), whatever the screen shows.

import { el } from "./format.js";
import { inChinese, labelled, name, t } from "./i18n.js";

/** What a resident may say without naming a building: stored as the office writes it. */
export const PUBLIC_AREA = inChinese("public_area");

/** A building as the screen names it (公共区域 in the reader's language). */
export function buildingLabel(building) {
  return building === PUBLIC_AREA ? t("public_area") : building;
}

/** A report being put together: the category chosen, nothing else yet. */
export function newDraft(category, compound) {
  return {
    request_id: requestId(), category, compound, urgency: "normal", phrases: [],
    building: "", unit: "", room: "", description: "", phone: "", attachments: [],
  };
}

function requestId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** Whether anything has been chosen or entered. */
export function hasContent(draft) {
  return !!draft && (draft.phrases.length > 0 || !!draft.description || !!draft.building
    || draft.attachments.length > 0 || !!draft.phone || !!draft.room);
}

const toggle = (list, value) => (list.includes(value) ? list.filter((v) => v !== value) : [...list, value]);

/** A big toggle that says when it is chosen (a ✓, not colour alone). */
export function choice(label, pressed, onclick, attrs = {}) {
  return el("button", { type: "button", class: "choice", "aria-pressed": String(pressed), onclick, ...attrs }, label);
}

/** The categories as tiles, the first tap of a report. */
export function categoryTiles(categories, pick) {
  return el("div", { class: "categories" }, categories.filter((c) => !c.retired).map((c) =>
    el("button", { type: "button", dataset: { category: c.id }, onclick: () => pick(c) },
      el("span", { class: "icon", "aria-hidden": "true" }, c.icon), name(c.name, c.name_en))));
}

/**
 * 发生了什么: the category's phrases and the two requests (call me, visit me), each a tap.
 * `change(fn)` applies a change to the draft and draws again; `needed` marks it as what is missing.
 */
export function phrasesPicker(draft, change, needed = false) {
  const offered = [
    ...(draft.category.phrases ?? []).map((p) => [p, p, { dataset: { phrase: p } }]),
    [inChinese("contact_me"), t("contact_me"), { id: "contact-me" }],
    [inChinese("visit_me"), t("visit_me"), { id: "visit-me" }],
  ];
  return el("fieldset", { class: `phrases${needed ? " needed" : ""}` },
    el("legend", {}, needed ? "⚠ " : null, t("what_happened")),
    el("div", { class: "choices" }, offered.map(([value, label, attrs]) =>
      choice(label, draft.phrases.includes(value), () => change(() => { draft.phrases = toggle(draft.phrases, value); }), attrs))));
}

/**
 * 在哪里: the buildings of each compound in `places` (`[{ compound, buildings }]`, a compound
 * named only when there are several), 公共区域, and the chosen building's units in a row kept for
 * them, so that nothing moves when a building is chosen. `needed` marks it as what is missing.
 */
export function placePicker(draft, places, change, needed = false) {
  const several = places.length > 1;
  const chosen = places.find((p) => p.compound.id === draft.compound)?.buildings.find((b) => b.name === draft.building);
  const pick = (compound, building) => change(() => {
    const same = draft.compound === compound && draft.building === building;
    draft.compound = compound;
    draft.building = same ? "" : building;
    draft.unit = "";
  });
  const button = (compound, building, label, attrs = {}) =>
    choice(label, draft.compound === compound && draft.building === building, () => pick(compound, building),
      { dataset: { building, compound }, ...attrs });
  const units = chosen?.units ?? [];
  return el("fieldset", { class: `where${needed ? " needed" : ""}` },
    el("legend", {}, needed ? "⚠ " : null, t("where")),
    places.map(({ compound, buildings }) => el("div", { class: "buildings", role: "group", "aria-label": several ? compound.name : t("building") },
      several ? el("span", { class: "compound-name" }, compound.name) : null,
      buildings.map((b) => button(compound.id, b.name, b.name, b.mine ? { class: "choice mine" } : {})),
      button(compound.id, PUBLIC_AREA, t("public_area"), { class: "choice public" }))),
    el("div", { class: "choices units", role: "group", "aria-label": t("unit") },
      units.length
        ? units.map((u) => choice(u, draft.unit === u, () => change(() => { draft.unit = draft.unit === u ? "" : u; }), { dataset: { unit: u } }))
        : el("p", { class: "hint" }, t(draft.building ? "no_units" : "units_after_building"))));
}

/** A field entered on the keypad, shown as a big button with what was entered. */
export function keyButton(draft, field, label, max, change) {
  return el("button", { type: "button", class: "choice keyed", id: `key-${field}`, onclick: () =>
    openKeypad(label, draft[field], max, (value) => change(() => { draft[field] = value; })) },
    labelled(label), el("span", { class: "value" }, draft[field] || t("not_given")));
}

/** 是否紧急: two big toggles. */
export function urgencyPicker(draft, change) {
  return el("fieldset", { class: "urgency-choice" },
    // The hint beside the question, on one line: the form must fit one screen.
    el("legend", {}, t("urgency"), " ", el("span", { class: "hint" }, t("urgency_hint"))),
    el("div", { class: "urgency" }, ["normal", "urgent"].map((u) =>
      el("button", { type: "button", class: u, id: `urgency-${u}`, "aria-pressed": String(draft.urgency === u), onclick: () => change(() => { draft.urgency = u; }) }, t(u)))));
}

/** What the resident said: the phrases tapped and their own words, or nothing. */
export function said(draft) {
  return [...draft.phrases, draft.description.trim()].filter(Boolean).join("；");
}

/** What is still missing before the draft can be sent (an i18n key), or null. */
export function missing(draft) {
  if (!said(draft) && !draft.attachments.some((a) => a.kind === "voice")) return "need_what";
  if (!draft.building) return "need_where";
  return null;
}

/** The report to send for a complete draft. */
export function reportOf(draft) {
  return {
    compound: draft.compound, category: draft.category.id, urgency: draft.urgency,
    building: draft.building, unit: draft.unit, room: draft.room,
    description: said(draft) || inChinese("voice_note"), phone: draft.phone || null,
    attachments: draft.attachments,
  };
}

// ---- Drawing again in place ----

/** A selector for `node`, the control that has the focus in `within`, to give it back after drawing again. */
export function focusKey(node, within) {
  if (!node || node === document.body || !within.contains(node)) return null;
  if (node.id) return `#${CSS.escape(node.id)}`;
  const data = Object.entries(node.dataset).map(([k, v]) => `[data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${CSS.escape(v)}"]`).join("");
  return data ? `${node.tagName.toLowerCase()}${data}` : null;
}

/**
 * Draws `within` again with `draw()` where it was: the same control keeps the focus and the box
 * keeps its scroll, so that a tap never moves what is under the finger.
 */
export function inPlace(within, draw) {
  const focused = focusKey(document.activeElement, within);
  const top = within.scrollTop;
  draw();
  within.scrollTop = top;
  if (focused) within.querySelector(focused)?.focus({ preventScroll: true });
}

// ---- The on-screen keypad: digits only, big keys, a modal dialog above whatever is open ----

let keypadDialog = null;

/** Whether the keypad is open (the kiosk counts it as someone at the screen). */
export function keypadOpen() { return !!keypadDialog; }

/** Closes the keypad without entering anything. */
export function closeKeypad() {
  const dialog = keypadDialog;
  keypadDialog = null;
  dialog?.close();
  dialog?.remove();
}

/** Opens the keypad for `label`, starting from `value`; `done(value)` on 确定. */
export function openKeypad(label, value, max, done) {
  closeKeypad();
  let typed = value ?? "";
  const shown = el("output", { id: "keypad-value", "aria-live": "polite" }, typed || " ");
  const show = () => { shown.textContent = typed || " "; };
  const key = (text, onclick, attrs = {}) => el("button", { type: "button", onclick, ...attrs }, text);
  const digit = (d) => key(d, () => { if (typed.length < max) typed += d; show(); }, { dataset: { key: d } });
  const dialog = el("dialog", { class: "keypad", id: "keypad", "aria-labelledby": "keypad-title" },
    el("h2", { id: "keypad-title" }, label),
    shown,
    el("div", { class: "keys" },
      ["1", "2", "3", "4", "5", "6", "7", "8", "9"].map(digit),
      key(t("keypad_clear"), () => { typed = ""; show(); }, { dataset: { key: "clear" } }),
      digit("0"),
      key(t("keypad_delete"), () => { typed = typed.slice(0, -1); show(); }, { dataset: { key: "delete" }, "aria-label": t("keypad_delete") })),
    el("div", { class: "actions" },
      key(t("back"), closeKeypad, { id: "keypad-back" }),
      key(t("keypad_ok"), () => { closeKeypad(); done(typed); }, { class: "primary", id: "keypad-ok" })));
  // Escape closes it like 返回.
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); closeKeypad(); });
  keypadDialog = dialog;
  document.body.append(dialog);
  dialog.showModal();
  dialog.querySelector("[data-key='1']").focus();
}
