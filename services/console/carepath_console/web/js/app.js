// The console's router: one page, history API, one live connection shared by the views.
import { post, whoami } from "./api.js";
import { el, teamName } from "./labels.js";
import { Live } from "./live.js";
import { dashboardView } from "./views/dashboard.js";
import { episodeView } from "./views/episode.js";
import { signinView } from "./views/signin.js";
import { worklistView } from "./views/worklist.js";

const main = document.getElementById("main");
let teardown = () => {};
const hub = { subs: new Set(), states: new Set(), live: null,
  subscribe(fn, onState) { this.subs.add(fn); if (onState) this.states.add(onState);
    return () => { this.subs.delete(fn); if (onState) this.states.delete(onState); }; } };

function startLive() {
  if (hub.live) return;
  hub.live = new Live((type, data, id) => { for (const fn of hub.subs) fn(type, data, id); },
    (st, n) => { for (const fn of hub.states) fn(st, n); }).start();
  window.__carepathLive = hub.live;
}

function home(me) {
  if (me.role === "dashboard") return "/dashboard";
  if (me.role === "coordinator" || me.role === "admin") return "/coordinator";
  return "/worklist";
}

function nav(me) {
  const links = [];
  if (me) {
    if (me.role === "team_member" || me.role === "coordinator") links.push(["/worklist", me.role === "coordinator" ? "My team" : "Worklist"]);
    if (me.role === "coordinator" || me.role === "admin") links.push(["/coordinator", "Coordinator"]);
    if (me.role !== "team_member") links.push(["/dashboard", "Dashboard"]);
  }
  document.getElementById("nav").replaceChildren(el("ul", {}, links.map(([href, text]) =>
    el("li", {}, el("a", { href, "data-link": true, "aria-current": location.pathname === href ? "page" : null }, text)))));
  const who = document.getElementById("who");
  who.replaceChildren(...(me ? [`${me.subject} · ${teamName(me.team)} · ${me.role.replace("_", " ")} `,
    el("button", { type: "button", class: "link", id: "signout", onclick: signout }, "Sign out")] : []));
}

async function signout() {
  await post("/auth/signout", {});
  if (hub.live) { hub.live.stop(); hub.live = null; }
  history.pushState({}, "", "/signin");
  route();
}

async function route() {
  teardown(); teardown = () => {};
  const me = await whoami();
  const path = location.pathname;
  if (!me) {
    nav(null);
    if (path !== "/signin") history.replaceState({}, "", "/signin");
    document.title = "Sign in · Carepath";
    await signinView(main, () => { history.pushState({}, "", "/"); route(); });
    return;
  }
  if (path === "/" || path === "/signin") { history.replaceState({}, "", home(me)); return route(); }
  nav(me);
  startLive();
  let title = "Carepath";
  if (path === "/worklist") { teardown = worklistView(main, me, hub, { coordinator: false }); title = "Worklist"; }
  else if (path === "/coordinator") { teardown = worklistView(main, me, hub, { coordinator: true }); title = "Coordinator"; }
  else if (path === "/dashboard") { teardown = dashboardView(main, me, hub); title = "Dashboard"; }
  else if (path.startsWith("/episodes/")) {
    const id = decodeURIComponent(path.slice("/episodes/".length));
    teardown = episodeView(main, me, hub, id); title = `Episode ${id}`;
  } else { main.replaceChildren(el("h1", {}, "Nothing here")); }
  document.title = `${title} · Carepath`;
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || a.origin !== location.origin) return;
  ev.preventDefault();
  history.pushState({}, "", a.getAttribute("href"));
  route().then(() => main.focus());
});
window.addEventListener("popstate", route);
route();
