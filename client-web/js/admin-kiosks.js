// Kiosks: one per station. Paired by a QR code shown here and opened on the device (single
// use, 30 minutes); each one's last contact and whether it is online now; revoked at once.

import { t } from "./i18n.js";
import { el, formatTime } from "./format.js";
import { api, closeDialog, compoundName, confirmDialog, field, openDialog, table } from "./admin-kit.js";

export async function render(panel, office) {
  const list = await api("GET", "/api/admin/kiosks");
  const compounds = office.identity.everything
    ? office.community.compounds
    : office.community.compounds.filter((c) => office.identity.compounds.includes(c.id));
  panel.replaceChildren(
    el("div", { class: "panel-head" },
      el("h2", {}, t("tab_kiosks")),
      el("button", { type: "button", class: "primary", id: "add-kiosk", onclick: () => add(panel, office, compounds) }, t("add_kiosk"))),
    table("kiosks", [t("kiosk_name"), t("kiosk_id"), t("compound"), t("state"), t("last_contact"), t("actions")], list.map((k) => ({
      data: { kiosk: k.id },
      cells: [
        k.name,
        k.id,
        compoundName(office.community, k.compound),
        { className: "kiosk-state", content: k.revoked ? t("revoked") : el("span", { class: k.online ? "pill ok" : "pill off" }, k.online ? t("online_now") : t("offline_now")) },
        k.last_contact ? formatTime(k.last_contact) : t("never"),
        { className: "row-actions", content: [
          el("button", { type: "button", class: "pair", onclick: () => pair(panel, office, k) }, t("pair_kiosk")),
          k.revoked ? null : el("button", { type: "button", class: "revoke", onclick: () => revoke(panel, office, k) }, t("revoke")),
        ] },
      ],
    }))),
  );
}

function add(panel, office, compounds) {
  const compound = el("select", { id: "k-compound", required: true }, compounds.map((c) => el("option", { value: c.id }, c.name)));
  const name = el("input", { id: "k-name", maxlength: 40, placeholder: compounds[0]?.station ?? "" });
  openDialog(t("add_kiosk"), el("div", { class: "stack" }, field(t("compound"), compound), field(`${t("kiosk_name")}${t("optional")}`, name)), {
    submit: t("add"),
    onSubmit: async () => {
      const added = await api("POST", "/api/admin/kiosks", { compound: compound.value, name: name.value.trim() });
      await render(panel, office);
      await pair(panel, office, added.kiosk);
    },
  });
}

async function pair(panel, office, kiosk) {
  let code;
  try {
    code = await api("POST", `/api/admin/kiosks/${encodeURIComponent(kiosk.id)}/pairing`);
  } catch (problem) {
    office.toast(problem.message);
    return;
  }
  const qr = el("img", { class: "qr", id: "pairing-qr", alt: `${t("pairing_title")}: ${code.link}`, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qr_svg)}` });
  openDialog(`${t("pairing_title")} · ${kiosk.name}`, el("div", { class: "stack" },
    el("p", {}, t("pairing_help")),
    qr,
    el("p", { class: "link-text" }, el("a", { href: code.link, id: "pairing-link", target: "_blank", rel: "noopener" }, code.link)),
    el("p", {}, `${t("expires")} ${formatTime(code.expires)}`)));
  document.getElementById("dialog").addEventListener("close", () => render(panel, office), { once: true });
}

async function revoke(panel, office, kiosk) {
  if (!(await confirmDialog(`${t("revoke")} · ${kiosk.name}`, t("confirm_revoke"), t("revoke")))) return;
  try {
    await api("POST", `/api/admin/kiosks/${encodeURIComponent(kiosk.id)}/revoke`);
    closeDialog();
    office.toast(t("saved"));
  } catch (problem) {
    office.toast(problem.message);
  }
  await render(panel, office);
}
