// Staff log in; a session cookie (HttpOnly) is set and the page goes where it was asked to.

import { applyI18n, t, toggleLang } from "./i18n.js";

const form = document.getElementById("login-form");
const error = document.getElementById("error");

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.textContent = "";
  const body = { login: form.login.value.trim(), password: form.password.value };
  const r = await fetch("/api/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .catch(() => null);
  if (!r) { error.textContent = t("offline"); return; }
  if (!r.ok) {
    const problem = await r.json().catch(() => ({}));
    error.textContent = problem.message_zh && document.documentElement.lang === "zh-CN" ? problem.message_zh : (problem.message || t("wrong"));
    return;
  }
  const identity = await r.json();
  const next = new URLSearchParams(location.search).get("next");
  // Only paths on this server, never another site.
  location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : identity.role === "supervisor" ? "/audit" : "/board";
});
document.getElementById("lang").addEventListener("click", () => toggleLang());
applyI18n();
