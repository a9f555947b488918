// The whole plan of one episode as a timeline: each recommendation with its rationale,
// evidence and thresholds beside the referral that carries it out; withdrawn ones with the
// reason; outcomes; the audit history; what changed since the user's last visit.
import { get } from "../api.js";
import { referralCard } from "../card.js";
import { el, stepName, statusName, teamName, words } from "../labels.js";

const fmt = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { timeZone: "UTC" }) + " UTC" : "");

export function episodeView(root, me, live, episodeId) {
  let lastVisit, first = true, timer = null;
  async function refresh() {
    if (root.querySelector("form")) { setTimeout(refresh, 1000); return; }
    let data;
    try { data = await get(`/api/episodes/${encodeURIComponent(episodeId)}`); }
    catch (problem) {
      root.replaceChildren(el("h1", {}, "Nothing here"),
        el("p", { class: "empty", "data-nothing": true }, problem.status === 404 || problem.status === 403
          ? "There is no episode you may see at this address." : problem.message));
      return;
    }
    if (first) { lastVisit = data.last_visit; first = false; }
    const plan = data.plan;
    const since = lastVisit ? Date.parse(lastVisit.at) : null;
    const visible = new Map(data.referrals.map((r) => [r.referral_id, r]));
    const byRec = new Map(Object.values(plan.referrals || {}).map((r) => [r.recommendation_id, r]));
    const items = [];
    for (const [recId, rec] of Object.entries(plan.recommendations || {})) {
      items.push({ at: byRec.get(recId)?.created_at || plan.created_at, kind: "rec", recId, rec, ref: byRec.get(recId) });
    }
    for (const [recId, w] of Object.entries(plan.withdrawn || {})) items.push({ at: w.withdrawn_at, kind: "withdrawn", recId, w, ref: byRec.get(recId) });
    items.sort((a, b) => String(a.at).localeCompare(String(b.at)));
    const changed = (iso) => since !== null && Date.parse(iso) > since;

    const head = [el("h1", {}, `Episode ${plan.episode_id}`),
      el("p", { class: "meta" }, el("span", { "data-plan-version": plan.version }, `Care plan version ${plan.version}`),
        el("span", {}, `pathway ${plan.pathway_version || "?"} (${plan.profile || "default"} profile)`),
        plan.urgent ? el("span", { class: "badge urgent" }, "urgent") : null)];
    if (lastVisit && plan.version > lastVisit.version) {
      head.push(el("p", { class: "notice", "data-changed-since": lastVisit.version },
        `Changed since your last visit (${fmt(lastVisit.at)}): version ${lastVisit.version} → ${plan.version}.`));
    } else if (!lastVisit) head.push(el("p", { class: "conn" }, "Your first visit to this episode."));

    const timeline = el("ol", { class: "timeline", "aria-label": "Care plan timeline" }, items.map((it) => {
      const ref = it.ref;
      const refBox = ref ? (visible.has(ref.referral_id)
        ? referralCard(visible.get(ref.referral_id), me, refresh, "div")
        : el("p", {}, `Referral to ${teamName(ref.team)}: ${statusName(ref.status)} (${words(ref.business_status)})`)) : el("p", {}, "No referral.");
      if (it.kind === "withdrawn") {
        return el("li", { class: "withdrawn", "data-withdrawn": it.recId },
          el("h2", {}, `Withdrawn: ${stepName(it.w.step)}`), el("p", {}, `Reason: ${it.w.reason || "not given"} (${fmt(it.w.withdrawn_at)})`), refBox);
      }
      const rec = it.rec;
      const thresholds = Object.entries(rec.thresholds || {});
      return el("li", { "data-recommendation": rec.step },
        el("h2", {}, stepName(rec.step), " ", ref && changed(ref.updated_at) ? el("span", { class: "changed" }, "changed") : null),
        el("p", { class: "rationale" }, el("strong", {}, "Why: "), rec.rationale || "—"),
        (rec.evidence || []).length ? el("p", {}, el("strong", {}, "Evidence: "), rec.evidence.map((e) => `${e.source} ${e.section}`).join("; ")) : null,
        thresholds.length ? el("p", {}, el("strong", {}, "Thresholds: "), thresholds.map(([k, v]) => `${words(k)} ${v}`).join(", ")) : null,
        refBox);
    }));

    const outcomes = (plan.outcomes || []).map((o) => el("li", {}, `${stepName(o.step)} by ${teamName(o.team)} at ${fmt(o.completed_at)}: `,
      Object.entries(o.result || {}).filter(([k]) => k !== "episode_id").map(([k, v]) => `${words(k)} ${Array.isArray(v) ? v.join(", ") : v}`).join("; ")));
    const audit = el("table", {}, el("caption", {}, "Audit history"),
      el("thead", {}, el("tr", {}, ["When", "What", "Step", "Who", "Status", "Reason"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, data.history.map((e) => el("tr", { class: changed(e.at) ? "is-new" : null },
        el("td", {}, fmt(e.at)), el("td", {}, e.action), el("td", {}, stepName(plan.referrals?.[e.referral_id]?.step || "")),
        el("td", {}, `${teamName(e.actor_team)} (${e.actor_role})`),
        el("td", {}, `${e.from_status ? statusName(e.from_status) + " → " : ""}${statusName(e.to_status)}`), el("td", {}, e.reason || "")))));
    root.replaceChildren(...head, el("h2", {}, "Plan"), timeline,
      el("h2", {}, "Outcomes reported"), outcomes.length ? el("ul", {}, outcomes) : el("p", {}, "None yet."),
      el("h2", {}, "History"), audit);
    document.body.dataset.rendered = String(Date.now());
  }
  const unsub = live.subscribe((type, body) => {
    if (type === "changed" || ((type === "careplan.updated" || type === "removed") && body.episode_id === episodeId)) {
      clearTimeout(timer); timer = setTimeout(refresh, 250);
    }
  });
  refresh();
  return () => { unsub(); clearTimeout(timer); };
}
