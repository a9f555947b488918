// Live pathway status from the stream: counts by step, team and status, urgent episodes,
// overdue per team, median created→accepted per team. Folded idempotently (fold.js).
import { barChart } from "../charts.js";
import { emptyState, foldEvent, summary } from "../fold.js";
import { el, stepName, statusName, teamName } from "../labels.js";

export function dashboardView(root, me, live) {
  const state = emptyState();
  const conn = el("p", { class: "conn", id: "conn-state" }, "connecting…");
  const body = el("div");
  root.replaceChildren(el("h1", {}, "Pathway dashboard"), conn, body);
  let scheduled = false;
  const fmtS = (s) => (s === null ? "—" : s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
  function table(caption, rows, label, valueName = "Open", fmt = (v) => v) {
    return el("table", {}, el("caption", {}, caption),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, caption.split(" by ")[1] || "Name"), el("th", { scope: "col" }, valueName))),
      el("tbody", {}, rows.length ? rows.map(([k, v]) => el("tr", { "data-key": k }, el("td", {}, label(k)), el("td", { "data-count": v }, fmt(v))))
        : [el("tr", {}, el("td", { colspan: "2" }, "none"))]));
  }
  function draw() {
    scheduled = false;
    const s = summary(state);
    const sorted = (o) => Object.entries(o).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    body.replaceChildren(
      el("div", { class: "grid" },
        el("section", { class: "panel", "aria-labelledby": "h-open" }, el("h2", { id: "h-open" }, "Open referrals"),
          el("p", { class: "big", "data-total-open": s.open }, String(s.open)), el("p", {}, `${s.episodes} episodes`)),
        el("section", { class: "panel", "aria-labelledby": "h-urgent" }, el("h2", { id: "h-urgent" }, "Urgent episodes"),
          el("p", { class: "big", "data-urgent": s.urgentEpisodes.length }, String(s.urgentEpisodes.length)),
          el("ul", {}, s.urgentEpisodes.slice(0, 10).map((e) => el("li", {}, me.role === "dashboard" ? e : el("a", { href: `/episodes/${encodeURIComponent(e)}`, "data-link": true }, e))))),
        el("section", { class: "panel", "aria-labelledby": "h-team" }, el("h2", { id: "h-team" }, "Open by team"),
          barChart("Open referrals by team", sorted(s.byTeam), teamName), table("Open referrals by team", sorted(s.byTeam), teamName)),
        el("section", { class: "panel", "aria-labelledby": "h-status" }, el("h2", { id: "h-status" }, "Open by status"),
          barChart("Open referrals by status", sorted(s.byStatus), statusName), table("Open referrals by status", sorted(s.byStatus), statusName)),
        el("section", { class: "panel", "aria-labelledby": "h-step" }, el("h2", { id: "h-step" }, "Open by step"),
          barChart("Open referrals by step", sorted(s.byStep), stepName), table("Open referrals by step", sorted(s.byStep), stepName)),
        el("section", { class: "panel", "aria-labelledby": "h-over" }, el("h2", { id: "h-over" }, "Overdue per team"),
          table("Overdue referrals by team", sorted(s.overdueByTeam), teamName, "Overdue")),
        el("section", { class: "panel", "aria-labelledby": "h-acc" }, el("h2", { id: "h-acc" }, "Created → accepted (median)"),
          table("Median time to acceptance by team", Object.entries(s.medianAccept).sort(), teamName, "Median", fmtS)),
      ));
    document.body.dataset.rendered = String(Date.now());
  }
  const redraw = () => { if (!scheduled) { scheduled = true; requestAnimationFrame(draw); } };
  const unsub = live.subscribe((type, data, id) => {
    if (type === "snapshot") redraw();
    if (foldEvent(state, type, data)) redraw();
  }, (st, n) => { conn.textContent = st === "connected" ? `live (connection ${n})` : "reconnecting…"; conn.dataset.state = st; conn.dataset.connects = n; });
  draw();
  window.__carepathDashboard = () => summary(state);
  return unsub;
}
