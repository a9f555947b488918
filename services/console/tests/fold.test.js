// Unit tests of the dashboard fold (node's own test runner: npm test).
import assert from "node:assert/strict";
import { test } from "node:test";
import { emptyState, foldEvent, summary } from "../carepath_console/web/js/fold.js";

const ref = (id, status, extra = {}) => ({ referral_id: id, step: "diagnostic.medial_branch_block", team: "interventional_pain",
  status, business_status: status, priority: "routine", due_at: "2099-01-01T00:00:00Z",
  created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z", revision: 1, ...extra });
const plan = (ep, version, refs) => ({ episode_id: ep, data: { episode_id: ep, version, referrals: Object.fromEntries(refs.map((r) => [r.referral_id, r])) } });

test("a resent or older plan version changes nothing", () => {
  const s = emptyState();
  assert.equal(foldEvent(s, "careplan.updated", plan("e1", 2, [ref("r1", "requested")])), true);
  assert.equal(foldEvent(s, "careplan.updated", plan("e1", 2, [ref("r1", "requested")])), false);
  assert.equal(foldEvent(s, "careplan.updated", plan("e1", 1, [ref("r1", "cancelled")])), false);
  assert.equal(summary(s).open, 1);
  assert.deepEqual(summary(s).byStatus, { requested: 1 });
});

test("counts follow the latest version; completed referrals leave the open counts", () => {
  const s = emptyState();
  foldEvent(s, "careplan.updated", plan("e1", 1, [ref("r1", "requested"), ref("r2", "requested", { priority: "urgent", team: "surgery" })]));
  foldEvent(s, "careplan.updated", plan("e1", 2, [ref("r1", "completed", { revision: 5 }), ref("r2", "requested", { priority: "urgent", team: "surgery" })]));
  const out = summary(s);
  assert.equal(out.open, 1);
  assert.deepEqual(out.byTeam, { surgery: 1 });
  assert.deepEqual(out.urgentEpisodes, ["e1"]);
});

test("acceptance time is the update time of the accept and is kept afterwards", () => {
  const s = emptyState();
  foldEvent(s, "careplan.updated", plan("e1", 1, [ref("r1", "requested")]));
  foldEvent(s, "careplan.updated", plan("e1", 2, [ref("r1", "accepted", { revision: 2, updated_at: "2026-01-01T00:10:00Z" })]));
  foldEvent(s, "careplan.updated", plan("e1", 3, [ref("r1", "in-progress", { revision: 3, business_status: "scheduled", updated_at: "2026-01-02T00:00:00Z" })]));
  assert.deepEqual(summary(s).medianAccept, { interventional_pain: 600 });
});

test("overdue counts only open referrals past their due time", () => {
  const s = emptyState();
  foldEvent(s, "careplan.updated", plan("e1", 1, [ref("r1", "requested", { due_at: "2000-01-01T00:00:00Z" }),
    ref("r2", "completed", { due_at: "2000-01-01T00:00:00Z" })]));
  assert.deepEqual(summary(s).overdueByTeam, { interventional_pain: 1 });
});

test("a removed plan takes its referrals with it", () => {
  const s = emptyState();
  foldEvent(s, "careplan.updated", plan("e1", 1, [ref("r1", "requested")]));
  assert.equal(foldEvent(s, "removed", { episode_id: "e1", topic: "careplans" }), true);
  assert.equal(summary(s).open, 0);
});
