// The office, run from the browser by its supervisors: people, kiosks, the duty rota, the
// community, the API keys of other systems (Open311), and the history of every change. A compound leader (网格长) sees and changes only
// their compounds; the server decides, the page only leaves out what would be refused.

import { me } from "./connection.js";
import { applyI18n, t, toggleLang } from "./i18n.js";
import { toast } from "./format.js";
import { api } from "./admin-kit.js";
import * as people from "./admin-people.js";
import * as kiosks from "./admin-kiosks.js";
import * as rota from "./admin-rota.js";
import * as settings from "./admin-community.js";
import * as history from "./admin-history.js";
import * as keys from "./admin-keys.js";

const TABS = { people, kiosks, rota, community: settings, keys, history };

/** What the tabs share: who is looking, and the community as it is now. */
const office = { identity: null, community: null, toast };

async function show() {
  const tab = TABS[location.hash.slice(1)] ? location.hash.slice(1) : "people";
  for (const link of document.querySelectorAll("[data-tab]")) {
    if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  applyI18n();
  document.getElementById("toast").hidden = true;
  // Each community the identity runs (a street office's supervisor, several): the people,
  // kiosks and rota tabs show all of their compounds; the community tab edits the own one.
  const ids = office.identity.communities?.length ? office.identity.communities : [office.identity.community];
  office.communities = await Promise.all(ids.map((id) => api("GET", `/api/community?id=${encodeURIComponent(id)}`)));
  office.own = office.communities[0];
  office.community = {
    ...office.own,
    compounds: office.communities.flatMap((c) => c.compounds),
    categories: office.communities.flatMap((c) => c.categories).filter((c, i, all) => all.findIndex((d) => d.id === c.id) === i),
  };
  const panel = document.getElementById("panel");
  try {
    await TABS[tab].render(panel, office);
  } catch (problem) {
    panel.replaceChildren();
    toast(problem.message);
  }
  applyI18n(panel);
}

function refuse(text) {
  const box = document.getElementById("refused");
  box.hidden = false;
  box.textContent = text;
}

async function main() {
  applyI18n();
  office.identity = await me();
  if (!office.identity) { location.href = `/login?next=${encodeURIComponent("/admin")}`; return; }
  if (office.identity.must_change_password) { location.href = `/login?next=${encodeURIComponent("/admin")}`; return; }
  document.getElementById("who").textContent = office.identity.name;
  if (office.identity.role !== "supervisor") { refuse(t("admin_only")); return; }
  document.getElementById("tabs").hidden = false;
  window.addEventListener("hashchange", show);
  await show();
}

document.getElementById("lang").addEventListener("click", () => toggleLang(show));
document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST" });
  location.href = "/login";
});
main();
