// 接口密钥: the API keys the street office's, the 12345 platform's or an app's system posts
// reports with through Open311 (docs/open311.md). Issued by the community's 书记, shown once,
// revoked at once. A compound leader sees the tab's purpose, not the keys.

import { t } from "./i18n.js";
import { el } from "./format.js";
import { api, closeDialog, confirmDialog, field, openDialog, table } from "./admin-kit.js";

export async function render(panel, office) {
  const head = el("h2", {}, t("tab_keys"));
  const help = el("p", { class: "hint" }, t("keys_help"), " ", el("code", {}, `${location.origin}/open311/discovery.json`));
  if (!office.identity.everything) {
    panel.replaceChildren(head, help, el("p", { class: "notice" }, t("leader_no_keys")));
    return;
  }
  const list = await api("GET", "/api/admin/open311/keys");
  panel.replaceChildren(
    el("div", { class: "panel-head" }, head,
      el("button", { type: "button", class: "primary", id: "add-key", onclick: () => issue(panel, office) }, t("add_key"))),
    help,
    list.length
      ? table("keys", [t("key_holder"), t("key_id"), t("state"), t("actions")], list.map((k) => ({
        data: { key: k.id },
        cells: [
          k.name,
          k.id,
          k.revoked ? t("revoked") : el("span", { class: "pill ok" }, t("key_active")),
          { className: "row-actions", content: k.revoked ? null : el("button", { type: "button", class: "revoke", onclick: () => revoke(panel, office, k) }, t("revoke")) },
        ],
      })))
      : el("p", { class: "notice", id: "no-keys" }, t("no_keys")),
  );
}

function issue(panel, office) {
  const name = el("input", { id: "key-name", maxlength: 40, required: true, placeholder: t("key_holder_example") });
  openDialog(t("add_key"), el("div", { class: "stack" }, field(t("key_holder"), name, t("key_holder_hint"))), {
    submit: t("add"),
    onSubmit: async () => {
      const issued = await api("POST", "/api/admin/open311/keys", { name: name.value.trim(), community: office.own.id });
      await render(panel, office);
      openDialog(`${t("add_key")} · ${issued.key.name}`, el("div", { class: "stack" },
        el("p", {}, t("key_shown_once")),
        el("p", { class: "link-text" }, el("code", { id: "issued-key" }, issued.api_key))));
    },
  });
}

async function revoke(panel, office, key) {
  if (!(await confirmDialog(`${t("revoke")} · ${key.name}`, t("confirm_revoke_key"), t("revoke")))) return;
  try {
    await api("POST", `/api/admin/open311/keys/${encodeURIComponent(key.id)}/revoke`);
    closeDialog();
    office.toast(t("saved"));
  } catch (problem) {
    office.toast(problem.message);
  }
  await render(panel, office);
}
