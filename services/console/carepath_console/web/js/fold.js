// The dashboard's state: the latest care plan of every episode, folded from the stream.
// Idempotent: a plan version not newer than the one held is ignored, and each referral is
// kept at its highest revision, so a replayed or resent event never counts twice.
// Acceptance time: a referral whose status and business status are both "accepted" was last
// changed by the accept itself, so its updated_at is the acceptance time; it is kept across
// the referral's later revisions. (A referral accepted and moved on before the dashboard
// first saw it has no known acceptance time and is left out of the median.)
export function emptyState() { return { episodes: new Map(), referrals: new Map() }; }

export function foldPlan(state, plan) {
  if (!plan || !plan.episode_id) return false;
  const held = state.episodes.get(plan.episode_id);
  if (held && held.version >= (plan.version || 0)) return false;
  state.episodes.set(plan.episode_id, { version: plan.version || 0, urgent: !!plan.urgent });
  for (const [rid, ref] of Object.entries(plan.referrals || {})) {
    const old = state.referrals.get(rid);
    if (!old || (ref.revision || 0) >= (old.revision || 0)) {
      const acceptedNow = ref.status === "accepted" && ref.business_status === "accepted";
      const acceptedAt = acceptedNow ? ref.updated_at : (old && old.accepted_at) || null;
      state.referrals.set(rid, { ...ref, episode_id: plan.episode_id, accepted_at: acceptedAt });
    }
  }
  return true;
}

export function foldEvent(state, type, body) {
  if (type === "careplan.updated") return foldPlan(state, body.data);
  if (type === "removed" && body.topic === "careplans") {
    state.episodes.delete(body.episode_id);
    for (const [rid, r] of state.referrals) if (r.episode_id === body.episode_id) state.referrals.delete(rid);
    return true;
  }
  return false;
}

const OPEN = (r) => r.status !== "completed" && r.status !== "cancelled";
function tally(items, key) {
  const out = {};
  for (const it of items) { const k = key(it); out[k] = (out[k] || 0) + 1; }
  return out;
}
function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
export function summary(state, now = Date.now()) {
  const refs = [...state.referrals.values()];
  const open = refs.filter(OPEN);
  const urgentEpisodes = new Set(open.filter((r) => r.priority === "urgent").map((r) => r.episode_id));
  const overdue = open.filter((r) => Date.parse(r.due_at) < now);
  const waits = {};
  for (const r of refs) {
    if (!r.accepted_at || !r.created_at) continue;
    (waits[r.team] ||= []).push((Date.parse(r.accepted_at) - Date.parse(r.created_at)) / 1000);
  }
  const medianAccept = Object.fromEntries(Object.entries(waits).map(([t, xs]) => [t, median(xs)]));
  return {
    episodes: state.episodes.size, open: open.length,
    byStep: tally(open, (r) => r.step), byTeam: tally(open, (r) => r.team), byStatus: tally(open, (r) => r.status),
    urgentEpisodes: [...urgentEpisodes].sort(), overdueByTeam: tally(overdue, (r) => r.team), medianAccept,
  };
}
