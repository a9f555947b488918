// One referral as a card: step in words, priority, business status, episode, due countdown,
// and the actions its status allows (with their inline forms).
import { post } from "./api.js";
import { formFor, outcomeFrom, renderFields, showErrors } from "./forms.js";
import { announce, countdown, el, stepName, statusName, teamName, TEAMS, words } from "./labels.js";

function actionsFor(ref, me) {
  const s = ref.status, team = me.role === "team_member" || ref.team === me.team;
  const out = [];
  if (team && me.role !== "dashboard") {
    if (s === "requested") out.push("claim");
    if (s === "requested" || s === "received") out.push("accept");
    if (s === "accepted" || (s === "in-progress" && !ref.started_at)) out.push("schedule");
    if (s === "accepted" || (s === "in-progress" && !ref.started_at)) out.push("start");
    if (s === "accepted" || s === "in-progress") out.push("complete");
    if (s === "requested" || s === "received" || s === "accepted") out.push("decline");
  }
  if (me.role === "coordinator" || me.role === "admin") {
    if (s === "requested" || s === "received" || s === "rejected") out.push("reroute");
    if (s !== "completed" && s !== "cancelled") out.push("cancel");
  }
  return out;
}
const LABEL = { claim: "Claim", accept: "Accept", decline: "Decline…", schedule: "Schedule…", start: "Start",
  complete: "Complete…", reroute: "Reroute…", cancel: "Cancel…" };

function reasonField(label) {
  const id = `r${Math.random().toString(36).slice(2)}`;
  return el("div", { "data-field": "reason" }, el("label", { for: id }, label),
    el("textarea", { id, name: "reason", rows: "2", cols: "40", required: true, "aria-describedby": `${id}-err` }),
    el("p", { class: "field-error", id: `${id}-err` }));
}

function formBody(action, ref) {
  if (action === "decline") return { nodes: [reasonField("Reason for declining")], read: (f) => ({ reason: f.reason.value }) };
  if (action === "cancel") return { nodes: [reasonField("Reason for cancelling")], read: (f) => ({ reason: f.reason.value }) };
  if (action === "schedule") {
    const id = `w${Math.random().toString(36).slice(2)}`;
    return { nodes: [el("div", { "data-field": "when" }, el("label", { for: id }, "Date and time"),
      el("input", { id, name: "when", type: "datetime-local", required: true, "aria-describedby": `${id}-err` }),
      el("p", { class: "field-error", id: `${id}-err` }))],
    read: (f) => ({ when: f.when.value ? new Date(f.when.value).toISOString() : "" }) };
  }
  if (action === "reroute") {
    const id = `t${Math.random().toString(36).slice(2)}`;
    const teams = Object.keys(TEAMS).filter((t) => t !== ref.team && t !== "care_coordinator");
    return { nodes: [el("div", { "data-field": "to_team" }, el("label", { for: id }, "New team"),
      el("select", { id, name: "to_team", "aria-describedby": `${id}-err` }, teams.map((t) => el("option", { value: t }, teamName(t)))),
      el("p", { class: "field-error", id: `${id}-err` })), reasonField("Reason for rerouting")],
    read: (f) => ({ to_team: f.to_team.value, reason: f.reason.value }) };
  }
  if (action === "complete") {
    const form = formFor(ref.step);
    return { nodes: renderFields(form), read: (f) => ({ outcome: outcomeFrom(form, f) }) };
  }
  return null;
}

export function referralCard(ref, me, onChanged, tag = "li") {
  const due = countdown(ref.due_at);
  const title = el("h2", {}, stepName(ref.step));
  const card = el(tag, { class: "card", "data-referral": ref.referral_id, "data-step": ref.step, "data-status": ref.status, "data-team": ref.team },
    el("article", { "aria-label": `${stepName(ref.step)}, episode ${ref.episode_id}` },
      title,
      el("dl", { class: "meta" },
        el("div", {}, el("dt", {}, "Priority"), el("dd", {}, el("span", { class: `badge ${ref.priority}` }, ref.priority))),
        el("div", {}, el("dt", {}, "Status"), el("dd", { class: "business-status" }, words(ref.business_status))),
        el("div", {}, el("dt", {}, "Task"), el("dd", {}, statusName(ref.status))),
        el("div", {}, el("dt", {}, "Team"), el("dd", {}, teamName(ref.team))),
        el("div", {}, el("dt", {}, "Episode"), el("dd", {}, el("a", { href: `/episodes/${encodeURIComponent(ref.episode_id)}`, "data-link": true }, ref.episode_id))),
        el("div", {}, el("dt", {}, "Due"), el("dd", {}, el("span", { class: `due ${due.cls}`, "data-due": ref.due_at }, due.text))),
        ref.claimed_by ? el("div", {}, el("dt", {}, "Claimed by"), el("dd", {}, ref.claimed_by)) : null,
        ref.decline_reason ? el("div", {}, el("dt", {}, "Declined because"), el("dd", {}, ref.decline_reason)) : null),
      ref.rationale && tag === "li" ? el("p", { class: "rationale" }, ref.rationale) : null,
    ));
  const actions = el("div", { class: "actions", role: "group", "aria-label": `Actions for ${stepName(ref.step)}` });
  const slot = el("div");
  for (const action of actionsFor(ref, me)) {
    actions.append(el("button", { type: "button", "data-action": action, onclick: () => open(action) }, LABEL[action]));
  }
  card.firstChild.append(actions, slot);

  async function run(action, body, formEl) {
    try {
      await post(`/api/referrals/${encodeURIComponent(ref.referral_id)}/${action}`, body);
      announce(`${stepName(ref.step)}: ${action} done`);
      slot.replaceChildren();
      onChanged();
    } catch (problem) {
      if (formEl) showErrors(formEl, problem);
      else { slot.replaceChildren(el("p", { class: "form-error", role: "alert" }, problem.message)); }
    }
  }
  function open(action) {
    const spec = formBody(action, ref);
    if (!spec) { run(action, {}, null); return; }
    const formEl = el("form", { class: "form", "aria-label": `${LABEL[action].replace("…", "")} ${stepName(ref.step)}`, novalidate: true },
      ...spec.nodes,
      el("p", { class: "form-error", role: "alert", tabindex: "-1" }),
      el("button", { type: "submit", class: "primary" }, LABEL[action].replace("…", "")),
      el("button", { type: "button", onclick: () => slot.replaceChildren() }, "Close"));
    formEl.addEventListener("submit", (ev) => { ev.preventDefault(); run(action, spec.read(formEl), formEl); });
    slot.replaceChildren(formEl);
    const first = formEl.querySelector("input, select, textarea, button");
    if (first) first.focus();
  }
  return card;
}
