// The community: its compounds with their buildings and units, the categories residents pick
// with their first-response and resolution targets and the phrases they tap. A change applies
// to new reports only. Community supervisors (书记) only.

import { t } from "./i18n.js";
import { el } from "./format.js";
import { api, durationInput, durationOf, field } from "./admin-kit.js";

/** "3号楼：1单元、2单元" per line ⇄ buildings. */
function buildingsText(buildings) {
  return buildings.map((b) => (b.units.length ? `${b.name}：${b.units.join("、")}` : b.name)).join("\n");
}

function parseBuildings(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [name, units = ""] = line.split(/[:：]/);
    return { name: name.trim(), units: units.split(/[,，、]/).map((u) => u.trim()).filter(Boolean) };
  });
}

const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);

export async function render(panel, office) {
  if (!office.identity.everything) {
    panel.replaceChildren(el("h2", {}, t("tab_community")), el("p", { class: "notice" }, t("leader_no_community")));
    return;
  }
  const community = structuredClone(office.own);
  const text = (value, attrs = {}) => el("input", { value: value ?? "", ...attrs });
  const name = text(community.name, { id: "c-name", maxlength: 40, required: true });
  const street = text(community.street_office, { id: "c-street", maxlength: 40, required: true });
  const escalation = durationInput(t("escalation_after"), community.escalation.unclaimed_after);

  const compoundForms = community.compounds.map((c) => {
    const inputs = {
      name: text(c.name, { maxlength: 40, required: true }),
      station: text(c.station, { maxlength: 40, required: true }),
      grid: text(c.grid, { maxlength: 40, required: true }),
      buildings: el("textarea", { rows: 4 }),
    };
    inputs.buildings.value = buildingsText(c.buildings);
    const node = el("fieldset", { class: "compound", dataset: { compound: c.id } }, el("legend", {}, `${c.name}（${c.id}）`),
      el("div", { class: "row" }, field(t("compound"), inputs.name), field(t("station"), inputs.station), field(t("grid"), inputs.grid)),
      field(t("building_lines"), inputs.buildings));
    return { node, read: () => ({ ...c, name: inputs.name.value.trim(), station: inputs.station.value.trim(), grid: inputs.grid.value.trim(), buildings: parseBuildings(inputs.buildings.value) }) };
  });

  const categoryForm = (c, isNew) => {
    const inputs = {
      id: text(c.id, { maxlength: 32, required: true, pattern: "[A-Za-z0-9_-]{1,32}", disabled: !isNew }),
      name: text(c.name, { maxlength: 40, required: true }),
      name_en: text(c.name_en, { maxlength: 40, required: true }),
      icon: text(c.icon, { maxlength: 4, class: "short" }),
      private: el("input", { type: "checkbox", checked: c.private }),
      retired: el("input", { type: "checkbox", checked: Boolean(c.retired) }),
      phrases: el("textarea", { rows: 3 }),
    };
    inputs.phrases.value = c.phrases.join("\n");
    const targets = {
      rn: durationInput(t("respond_normal"), c.targets.normal.respond),
      sn: durationInput(t("resolve_normal"), c.targets.normal.resolve),
      ru: durationInput(t("respond_urgent"), c.targets.urgent.respond),
      su: durationInput(t("resolve_urgent"), c.targets.urgent.resolve),
    };
    const node = el("fieldset", { class: "category", dataset: { category: c.id } }, el("legend", {}, `${c.icon} ${c.name || t("add_category")}`),
      el("div", { class: "row" }, field(t("category_id"), inputs.id), field(t("category_name"), inputs.name), field(t("name_en"), inputs.name_en), field(t("icon"), inputs.icon)),
      el("div", { class: "row" }, el("label", { class: "check" }, inputs.private, " ", t("private")), el("label", { class: "check" }, inputs.retired, " ", t("retired"))),
      el("div", { class: "row" }, targets.rn, targets.sn, targets.ru, targets.su),
      field(t("phrases"), inputs.phrases));
    return {
      node,
      // What this form does not edit (emergency, mediation…) is kept as it was.
      read: () => ({
        ...c,
        id: inputs.id.value.trim(),
        name: inputs.name.value.trim(),
        name_en: inputs.name_en.value.trim(),
        icon: inputs.icon.value.trim(),
        private: inputs.private.checked,
        retired: inputs.retired.checked,
        phrases: lines(inputs.phrases.value),
        targets: {
          normal: { respond: durationOf(targets.rn), resolve: durationOf(targets.sn) },
          urgent: { respond: durationOf(targets.ru), resolve: durationOf(targets.su) },
        },
      }),
    };
  };
  const categoryForms = community.categories.map((c) => categoryForm(c, false));
  const categoriesBox = el("div", { id: "categories" }, categoryForms.map((f) => f.node));
  const error = el("p", { class: "error-text", role: "alert" });
  const saved = el("p", { role: "status", class: "saved-text" });

  const hour = 3600000;
  const blank = { id: "", name: "", name_en: "", icon: "📌", private: false, retired: false, phrases: [],
    targets: { normal: { respond: 2 * hour, resolve: 72 * hour }, urgent: { respond: hour / 2, resolve: 24 * hour } } };

  panel.replaceChildren(
    el("h2", {}, t("tab_community")),
    el("p", { class: "notice" }, t("community_note")),
    el("form", { class: "community-form", id: "community-form", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      saved.textContent = "";
      const next = {
        ...community,
        name: name.value.trim(),
        street_office: street.value.trim(),
        escalation: { ...community.escalation, unclaimed_after: durationOf(escalation) },
        compounds: compoundForms.map((f) => f.read()),
        categories: categoryForms.map((f) => f.read()),
      };
      try {
        office.own = await api("PUT", "/api/admin/community", next);
        saved.textContent = t("community_saved");
        office.toast(t("community_saved"));
      } catch (problem) {
        error.textContent = problem.message;
      }
    } },
      el("div", { class: "row" }, field(t("community_name"), name), field(t("street_office"), street), escalation),
      el("h3", {}, t("compound")),
      compoundForms.map((f) => f.node),
      el("h3", {}, t("categories")),
      categoriesBox,
      el("button", { type: "button", id: "add-category", onclick: () => {
        const form = categoryForm(structuredClone(blank), true);
        categoryForms.push(form);
        categoriesBox.append(form.node);
        form.node.querySelector("input")?.focus();
      } }, t("add_category")),
      error,
      saved,
      el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", id: "save-community" }, t("save")))),
  );
}
