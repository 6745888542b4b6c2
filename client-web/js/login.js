// Staff log in; a session cookie (HttpOnly) is set and the page goes where it was asked to.
// Someone whose password is a one-time code (a new account, a reset) sets their own first.

import { me } from "./connection.js";
import { applyI18n, lang, t, toggleLang } from "./i18n.js";

const form = document.getElementById("login-form");
const error = document.getElementById("error");
const change = document.getElementById("change-form");
const changeError = document.getElementById("change-error");
const current = document.getElementById("current");

/** A refusal in the reader's language. */
async function problemText(r) {
  const problem = await r.json().catch(() => ({}));
  return problem.message_zh && lang() === "zh" ? problem.message_zh : (problem.message || t("wrong"));
}

function proceed(identity) {
  const next = new URLSearchParams(location.search).get("next");
  // Only paths on this server, never another site.
  location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : identity.role === "supervisor" ? "/audit" : "/board";
}

/** Shows the form to set one's own password; `code` is the one-time code just typed, if known. */
function askForNewPassword(code) {
  form.hidden = true;
  change.hidden = false;
  current.value = code ?? "";
  document.getElementById("current-label").hidden = Boolean(code);
  document.getElementById(code ? "new-password" : "current").focus();
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.textContent = "";
  const body = { login: form.login.value.trim(), password: form.password.value };
  const r = await fetch("/api/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .catch(() => null);
  if (!r) { error.textContent = t("offline"); return; }
  if (!r.ok) { error.textContent = await problemText(r); return; }
  const identity = await r.json();
  if (identity.must_change_password) askForNewPassword(body.password);
  else proceed(identity);
});

change.addEventListener("submit", async (e) => {
  e.preventDefault();
  changeError.textContent = "";
  const next = document.getElementById("new-password").value;
  if (next !== document.getElementById("repeat-password").value) { changeError.textContent = t("passwords_differ"); return; }
  const body = { current: current.value, new: next };
  const r = await fetch("/api/me/password", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .catch(() => null);
  if (!r) { changeError.textContent = t("offline"); return; }
  if (!r.ok) { changeError.textContent = await problemText(r); return; }
  proceed(await r.json());
});

document.getElementById("lang").addEventListener("click", () => toggleLang());
applyI18n();
// Sent here by a page while the password is still a one-time code.
me().then((identity) => { if (identity?.must_change_password) askForNewPassword(null); }).catch(() => {});
