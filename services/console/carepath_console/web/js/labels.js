// Words for the codes the APIs speak.
export const STEPS = {
  "imaging.mri": "MRI", "imaging.ct": "CT scan", "imaging.spect": "SPECT scan",
  "diagnostic.medial_branch_block": "Medial branch block",
  "diagnostic.repeat_facet_injection": "Repeat facet joint injection",
  "injection.si_joint": "Sacroiliac joint injection", "injection.epidural_steroid": "Epidural steroid injection",
  "injection.trigger_point": "Trigger point injection", "ablation.rfa": "Radiofrequency ablation (RFA)",
  "ablation.repeat_rfa": "Repeat radiofrequency ablation", "neuromodulation.scs_evaluation": "Spinal cord stimulation evaluation",
  "neuromodulation.scs_trial": "Spinal cord stimulation trial", "neuromodulation.scs_implant": "Spinal cord stimulator implant",
  "surgery.consultation": "Surgical consultation", "surgery.urgent_referral": "Urgent surgical referral",
  "rehab.physical_therapy": "Physical therapy", "rehab.pain_education": "Pain education",
  "psychology.assessment": "Psychological assessment", "psychology.cbt": "Cognitive behavioural therapy",
  "coordination.second_opinion": "Second opinion", "coordination.pain_diary": "Pain diary",
};
export const TEAMS = {
  radiology: "Radiology", interventional_pain: "Interventional pain", physical_therapy: "Physical therapy",
  psychology: "Psychology", surgery: "Surgery", neuromodulation: "Neuromodulation", care_coordinator: "Care coordination",
};
export const STATUSES = {
  requested: "Requested", received: "Claimed", accepted: "Accepted", rejected: "Declined",
  "in-progress": "In progress", completed: "Completed", cancelled: "Cancelled",
};
export const QUEUES = {
  mine: "Assigned to me", unclaimed: "Unclaimed", open: "All open", overdue: "Overdue", completed: "Completed",
  declined: "Declined, awaiting reroute", urgent: "Urgent", escalated: "Escalated",
};
export const stepName = (s) => STEPS[s] || s;
export const teamName = (t) => TEAMS[t] || t;
export const statusName = (s) => STATUSES[s] || s;
export const words = (code) => String(code || "").replaceAll("-", " ").replaceAll("_", " ");
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
export function countdown(dueIso, now = Date.now()) {
  const ms = Date.parse(dueIso) - now;
  const abs = Math.abs(ms);
  const d = Math.floor(abs / 86400000), h = Math.floor((abs % 86400000) / 3600000), m = Math.floor((abs % 3600000) / 60000);
  const span = d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
  const cls = ms < 0 ? "over" : ms < 24 * 3600000 ? "soon" : "";
  return { text: ms < 0 ? `overdue by ${span}` : `due in ${span}`, cls };
}
export function announce(text) {
  const box = document.getElementById("announce");
  if (box) { box.textContent = ""; setTimeout(() => { box.textContent = text; }, 30); }
}
