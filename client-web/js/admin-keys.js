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
      ? table("keys", [t("key_holder"), t("key_id"), t("key_source"), t("state"), t("actions")], list.map((k) => ({
        data: { key: k.id },
        cells: [
          k.name,
          k.id,
          k.upstream ? `${t(`order_${k.upstream.source}`)} · ${new URL(k.upstream.webhook).host}` : t("key_plain"),
          k.revoked ? t("revoked") : el("span", { class: "pill ok" }, t("key_active")),
          { className: "row-actions", content: k.revoked ? [] : el("button", { type: "button", class: "revoke", onclick: () => revoke(panel, office, k) }, t("revoke")) },
        ],
      })))
      : el("p", { class: "notice", id: "no-keys" }, t("no_keys")),
  );
}

function issue(panel, office) {
  const name = el("input", { id: "key-name", maxlength: 40, required: true, placeholder: t("key_holder_example") });
  // 上级派单: a platform's key answers its work orders at the platform's webhook.
  const source = el("select", { id: "key-source" },
    el("option", { value: "" }, t("key_plain")),
    el("option", { value: "hotline" }, t("order_hotline")),
    el("option", { value: "street_office" }, t("order_street_office")));
  const webhook = el("input", { id: "key-webhook", type: "url", placeholder: "https://" });
  const webhookField = field(t("key_webhook"), webhook, t("key_webhook_hint"));
  webhookField.hidden = true;
  source.addEventListener("change", () => {
    webhookField.hidden = !source.value;
    webhook.required = Boolean(source.value);
  });
  const form = el("div", { class: "stack" }, field(t("key_holder"), name, t("key_holder_hint")), field(t("key_source"), source), webhookField);
  openDialog(t("add_key"), form, {
    submit: t("add"),
    onSubmit: async () => {
      const upstream = source.value ? { source: source.value, webhook: webhook.value.trim() } : null;
      const issued = await api("POST", "/api/admin/open311/keys", { name: name.value.trim(), community: office.own.id, upstream });
      await render(panel, office);
      openDialog(`${t("add_key")} · ${issued.key.name}`, el("div", { class: "stack" },
        el("p", {}, t("key_shown_once")),
        el("p", { class: "link-text" }, el("code", { id: "issued-key" }, issued.api_key)),
        issued.webhook_secret ? el("p", {}, t("key_secret_shown_once")) : null,
        issued.webhook_secret ? el("p", { class: "link-text" }, el("code", { id: "issued-secret" }, issued.webhook_secret)) : null));
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
