// People: the accounts of grid workers, building heads (楼长) and supervisors. Added with a
// one-time password handed over in person; reset the same way; disabled and enabled.

import { t } from "./i18n.js";
import { el } from "./format.js";
import { api, checkboxes, checkedIn, closeDialog, compoundName, confirmDialog, field, openDialog, roleName, table } from "./admin-kit.js";

/** The compounds `identity` manages: all for a community supervisor, else theirs. */
function managed(office) {
  const all = office.community.compounds;
  return office.identity.everything ? all : all.filter((c) => office.identity.compounds.includes(c.id));
}

/** Every building of the compounds given, as "<building>" values (names are per compound). */
function buildingsOf(office, compounds) {
  const names = office.community.compounds
    .filter((c) => compounds.includes(c.id))
    .flatMap((c) => c.buildings.map((b) => b.name));
  return [...new Set(names)];
}

function state(person) {
  if (person.disabled) return t("disabled");
  if (person.must_change_password) return t("must_change");
  return t("active");
}

export async function render(panel, office) {
  const list = await api("GET", "/api/admin/people");
  // Whoever runs several communities is told whose each person is.
  const several = office.communities.length > 1;
  const communityName = (id) => office.communities.find((c) => c.id === id)?.name ?? id;
  const rows = list.map((p) => ({
    data: { login: p.login },
    cells: [
      p.name,
      p.login,
      ...(several ? [[p.community, ...(p.communities ?? [])].map(communityName).join("、")] : []),
      roleName(p.role, p.compounds),
      p.compounds.map((c) => compoundName(office.community, c)).join("、") || "—",
      p.buildings.join("、") || "—",
      state(p),
      { className: "row-actions", content: [
        el("button", { type: "button", class: "edit", onclick: () => edit(panel, office, p) }, t("edit")),
        el("button", { type: "button", class: "reset", onclick: () => reset(panel, office, p) }, t("reset_password")),
        p.disabled
          ? el("button", { type: "button", class: "enable", onclick: () => toggle(panel, office, p, "enable") }, t("enable"))
          : p.login === office.identity.id ? null
            : el("button", { type: "button", class: "disable", onclick: () => toggle(panel, office, p, "disable") }, t("disable")),
      ] },
    ],
  }));
  panel.replaceChildren(
    el("div", { class: "panel-head" },
      el("h2", {}, t("tab_people")),
      el("button", { type: "button", class: "primary", id: "add-person", onclick: () => add(panel, office) }, t("add_person"))),
    table("people", [t("name"), t("login_name"), ...(several ? [t("community")] : []), t("role"), t("compounds"), t("buildings"), t("state"), t("actions")], rows),
  );
}

/** The fields of a person's form; `person` fills them when editing. */
function personFields(office, person) {
  // A supervisor with compounds is a compound leader (网格长); a community supervisor (书记)
  // may make either, a leader only leaders of their compounds.
  const supervisorLabel = office.identity.everything ? `${t("role_supervisor")} / ${t("role_leader")}` : t("role_leader");
  const role = el("select", { id: "p-role", name: "role", disabled: Boolean(person) },
    ["worker", "building_head", "supervisor"].map((r) => el("option", { value: r, selected: person?.role === r },
      r === "supervisor" ? supervisorLabel : roleName(r))));
  const compounds = checkboxes(t("compounds"), "compound", managed(office).map((c) => [c.id, c.name]), person?.compounds ?? (managed(office).length === 1 ? [managed(office)[0].id] : []));
  const buildingsBox = el("div", {});
  const fillBuildings = () => {
    const chosen = checkedIn(compounds, "compound");
    const kept = checkedIn(buildingsBox, "building");
    const names = buildingsOf(office, chosen);
    buildingsBox.replaceChildren(role.value === "building_head"
      ? checkboxes(t("buildings"), "building", names.map((n) => [n, n]), kept.length ? kept : person?.buildings ?? [])
      : "");
  };
  compounds.addEventListener("change", fillBuildings);
  role.addEventListener("change", fillBuildings);
  const nameInput = el("input", { id: "p-name", name: "name", maxlength: 40, required: true, value: person?.name ?? "" });
  const login = el("input", { id: "p-login", name: "login", maxlength: 32, required: true, autocomplete: "off", pattern: "[a-z0-9._-]{2,32}", value: person?.login ?? "", disabled: Boolean(person) });
  // Whose office, for a new 书记 of a street office's supervisor (the compounds tell otherwise).
  const community = office.communities.length > 1 && !person
    ? el("select", { id: "p-community", name: "community" }, office.communities.map((c) => el("option", { value: c.id }, c.name)))
    : null;
  const content = el("div", { class: "stack" },
    field(t("role"), role, t("leader_hint")),
    community ? field(t("community"), community) : null,
    field(t("name"), nameInput),
    field(t("login_name"), login),
    compounds,
    buildingsBox);
  fillBuildings();
  return {
    content,
    read: () => ({
      login: login.value.trim(),
      name: nameInput.value.trim(),
      role: role.value,
      ...(community && !checkedIn(compounds, "compound").length ? { community: community.value } : {}),
      compounds: checkedIn(compounds, "compound"),
      buildings: checkedIn(buildingsBox, "building"),
    }),
  };
}

function showCode(person, code) {
  openDialog(`${t("one_time_code")} · ${person.name}`, el("div", { class: "stack" },
    el("p", {}, t("hand_code")),
    el("p", { class: "code", id: "one-time-code" }, code),
    el("p", {}, `${t("login_name")}: ${person.login}`)));
}

function add(panel, office) {
  const form = personFields(office, null);
  openDialog(t("add_person"), form.content, {
    submit: t("add"),
    onSubmit: async () => {
      const added = await api("POST", "/api/admin/people", form.read());
      await render(panel, office);
      showCode(added.person, added.code);
    },
  });
}

function edit(panel, office, person) {
  const form = personFields(office, person);
  openDialog(`${t("edit")} · ${person.name}`, form.content, {
    onSubmit: async () => {
      const { name, compounds, buildings } = form.read();
      await api("PUT", `/api/admin/people/${encodeURIComponent(person.login)}`, { name, compounds, buildings });
      closeDialog();
      office.toast(t("saved"));
      await render(panel, office);
    },
  });
}

async function reset(panel, office, person) {
  if (!(await confirmDialog(`${t("reset_password")} · ${person.name}`, t("confirm_reset"), t("reset_password")))) return;
  try {
    const { code } = await api("POST", `/api/admin/people/${encodeURIComponent(person.login)}/reset`);
    await render(panel, office);
    showCode(person, code);
  } catch (problem) {
    office.toast(problem.message);
  }
}

async function toggle(panel, office, person, what) {
  if (what === "disable" && !(await confirmDialog(`${t("disable")} · ${person.name}`, t("confirm_disable"), t("disable")))) return;
  try {
    await api("POST", `/api/admin/people/${encodeURIComponent(person.login)}/${what}`);
    office.toast(t("saved"));
  } catch (problem) {
    office.toast(problem.message);
  }
  await render(panel, office);
}
