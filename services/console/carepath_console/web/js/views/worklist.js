// A worklist (team or coordinator): queues as tabs, filters in the URL, server-side paging,
// live refresh when referrals change.
import { get } from "../api.js";
import { referralCard } from "../card.js";
import { countdown, el, QUEUES, stepName, STATUSES, teamName, TEAMS } from "../labels.js";

export function worklistView(root, me, live, { coordinator }) {
  const path = coordinator ? "/coordinator" : "/worklist";
  const queues = coordinator ? ["declined", "urgent", "overdue", "escalated", "open", "completed"]
    : ["mine", "unclaimed", "open", "overdue", "completed"];
  const params = () => new URLSearchParams(location.search);
  const q = () => {
    const p = params();
    return { queue: p.get("queue") || queues[0], sort: p.get("sort") || "due", step: p.get("step") || "",
      status: p.get("status") || "", team: p.get("team") || "", page: p.get("page") || "1" };
  };
  const heading = el("h1", {}, coordinator ? "Coordinator: all teams" : `Worklist: ${teamName(me.team)}`);
  const tabs = el("ul", { class: "tabs", "aria-label": "Queues" });
  const filters = el("form", { class: "filters", "aria-label": "Sort and filter" });
  const summary = el("p", { class: "conn", "aria-live": "polite" });
  const list = el("ul", { class: "cards", "aria-label": "Referrals" });
  const pager = el("nav", { class: "pager", "aria-label": "Pages" });
  root.replaceChildren(heading, tabs, filters, summary, list, pager);
  let pending = false, loading = false, steps = [];

  function setQuery(changes, push = true) {
    const p = params();
    for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
    const url = `${path}?${p}`;
    if (push) history.pushState({}, "", url); else history.replaceState({}, "", url);
    refresh();
  }
  function select(name, label, options, value) {
    const id = `flt-${name}`;
    const s = el("select", { id, name }, options.map(([v, t]) => el("option", { value: v, selected: v === value }, t)));
    s.addEventListener("change", () => setQuery({ [name]: s.value, page: "" }));
    return el("label", { for: id }, label, s);
  }
  function drawFilters(cur) {
    const stepOpts = [["", "All steps"], ...[...new Set([...steps, cur.step].filter(Boolean))].map((s) => [s, stepName(s)])];
    const statusOpts = [["", "All statuses"], ...Object.entries(STATUSES)];
    const kids = [
      select("sort", "Sort by", [["due", "Due time"], ["priority", "Priority"], ["updated", "Last change"]], cur.sort),
      select("step", "Step", stepOpts, cur.step),
      select("status", "Status", statusOpts, cur.status),
    ];
    if (coordinator) kids.push(select("team", "Team", [["", "All teams"], ...Object.entries(TEAMS)], cur.team));
    filters.replaceChildren(...kids);
  }
  function drawTabs(cur, counts) {
    tabs.replaceChildren(...queues.map((name) => el("li", {}, el("a", {
      href: `${path}?${new URLSearchParams({ ...Object.fromEntries(params()), queue: name, page: "1" })}`,
      "aria-current": cur.queue === name ? "page" : null, "data-link": true, "data-queue": name,
    }, `${QUEUES[name]} (${counts?.[name] ?? 0})`))));
  }
  async function refresh() {
    if (list.querySelector("form")) { pending = true; return; }
    if (loading) { pending = true; return; }
    loading = true; pending = false;
    const cur = q();
    try {
      // A coordinator's "my team" view is their own team's queue (the API returns all teams).
      const team = coordinator ? cur.team : me.role === "team_member" ? "" : me.team;
      const page = await get("/api/worklist", { ...cur, team, size: 50 });
      steps = page.steps;
      drawTabs(cur, page.counts); drawFilters(cur);
      summary.textContent = `${page.total} referral${page.total === 1 ? "" : "s"} in “${QUEUES[cur.queue]}”, page ${page.page} of ${page.pages}`;
      // Keep the keyboard user's place: a live refresh must not drop the focus.
      const active = document.activeElement;
      const was = active && list.contains(active) ? { rid: active.closest("[data-referral]")?.dataset.referral,
        action: active.dataset.action, href: active.getAttribute("href") } : null;
      list.replaceChildren(...(page.items.length ? page.items.map((r) => referralCard(r, me, refresh))
        : [el("li", { class: "empty" }, "Nothing in this queue.")]));
      if (was && was.rid) {
        const box = list.querySelector(`[data-referral="${CSS.escape(was.rid)}"]`);
        const again = box && (was.action ? box.querySelector(`[data-action="${was.action}"]`)
          : was.href ? box.querySelector(`a[href="${CSS.escape(was.href)}"]`) : null);
        (again || box?.querySelector("button, a") || list).focus?.();
      }
      pager.replaceChildren(
        el("button", { type: "button", disabled: page.page <= 1, onclick: () => setQuery({ page: String(page.page - 1) }) }, "Previous page"),
        el("span", {}, `Page ${page.page} of ${page.pages}`),
        el("button", { type: "button", disabled: page.page >= page.pages, onclick: () => setQuery({ page: String(page.page + 1) }) }, "Next page"));
      document.body.dataset.rendered = String(Date.now());
    } catch (problem) {
      list.replaceChildren(el("li", { class: "empty", role: "alert" }, problem.message));
    } finally { loading = false; }
    if (pending) setTimeout(refresh, 100);
  }
  const tick = setInterval(() => {
    for (const s of list.querySelectorAll("[data-due]")) { const c = countdown(s.dataset.due); s.textContent = c.text; s.className = `due ${c.cls}`; }
    if (pending && !list.querySelector("form")) refresh();
  }, 1000);
  let timer = null;
  const unsub = live.subscribe((type) => {
    if (type === "careplan.updated" || type === "changed" || type === "removed") {
      clearTimeout(timer); timer = setTimeout(refresh, 250);
    }
  });
  refresh();
  return () => { clearInterval(tick); clearTimeout(timer); unsub(); };
}
