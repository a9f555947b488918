// Step-specific completion forms; they build the referrals API's complete-with-outcome body.
import { el } from "./labels.js";

const num = (name, label, min, max, step = 1) => ({ name, label, type: "number", min, max, step });
const FINDINGS = ["disc_herniation", "spinal_stenosis", "nerve_root_compression", "facet_arthropathy",
  "spondylolisthesis", "instability", "fracture", "spect_active_facet", "normal"];

export function formFor(step) {
  if (step === "diagnostic.medial_branch_block") return { kind: "medial_branch_block", fields: [
    num("relief_percent", "Relief (%)", 0, 100),
    { name: "anesthetic", label: "Anesthetic", type: "select", options: ["", "lidocaine", "bupivacaine"] }] };
  if (step === "ablation.rfa" || step === "ablation.repeat_rfa") return { kind: "rfa", fields: [
    num("relief_percent", "Relief (%)", 0, 100), num("relief_duration_months", "Relief lasted (months)", 0, 120, "any")] };
  if (step === "neuromodulation.scs_trial") return { kind: "scs_trial", fields: [num("relief_percent", "Relief (%)", 0, 100)] };
  if (step.startsWith("imaging.")) return { kind: "imaging", fixed: { modality: step.split(".")[1] }, fields: [
    { name: "modality", label: "Modality", type: "select", options: ["xray", "mri", "ct", "spect"], value: step.split(".")[1] },
    { name: "findings", label: "Findings", type: "checks", options: FINDINGS }] };
  if (step === "rehab.physical_therapy") return { kind: "physical_therapy", fields: [num("weeks", "Weeks completed", 0, 104, "any")] };
  if (step.startsWith("psychology.")) return { kind: step === "psychology.cbt" ? "screening" : "psychological_evaluation", fields: [
    num("phq9", "PHQ-9", 0, 27), num("gad7", "GAD-7", 0, 21), num("pain_catastrophizing", "PCS", 0, 52)] };
  return { kind: "step_completed", fixed: { step }, fields: [] };
}

let seq = 0;
export function renderFields(form) {
  const nodes = [];
  for (const f of form.fields) {
    const id = `f${++seq}-${f.name}`;
    const errId = `${id}-err`;
    let input;
    if (f.type === "select") {
      input = el("select", { id, name: f.name, "aria-describedby": errId },
        f.options.map((o) => el("option", { value: o, selected: o === f.value }, o || "(not recorded)")));
    } else if (f.type === "checks") {
      const box = el("fieldset", { "data-field": f.name, "aria-describedby": errId }, el("legend", {}, f.label),
        f.options.map((o, i) => el("label", { class: "check" }, el("input", { type: "checkbox", name: f.name, value: o, id: `${id}-${i}` }), ` ${o.replaceAll("_", " ")}`)),
        el("p", { class: "field-error", id: errId }));
      nodes.push(box); continue;
    } else {
      input = el("input", { id, name: f.name, type: "number", inputmode: "decimal", min: f.min, max: f.max, step: f.step, "aria-describedby": errId });
    }
    nodes.push(el("div", { "data-field": f.name }, el("label", { for: id }, f.label), input, el("p", { class: "field-error", id: errId })));
  }
  return nodes;
}

export function outcomeFrom(form, formEl) {
  const out = { kind: form.kind, ...(form.fixed || {}) };
  for (const f of form.fields) {
    if (f.type === "checks") {
      out[f.name] = [...formEl.querySelectorAll(`input[name="${f.name}"]:checked`)].map((i) => i.value);
      continue;
    }
    const v = formEl.querySelector(`[name="${f.name}"]`).value.trim();
    if (v === "") continue;
    out[f.name] = f.type === "number" ? Number(v) : v;
  }
  return out;
}

// Put each API error beside the field it names ("outcome.medial_branch_block.relief_percent"
// ends with the field's name); what names no field goes to the form's general message.
export function showErrors(formEl, problem) {
  formEl.querySelectorAll(".field-error, .form-error").forEach((p) => { p.textContent = ""; });
  formEl.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
  const general = [];
  for (const e of problem.errors || []) {
    const parts = String(e.field || "").split(".");
    let placed = false;
    for (const box of formEl.querySelectorAll("[data-field]")) {
      if (parts.includes(box.dataset.field)) {
        const p = box.querySelector(".field-error");
        p.textContent = e.reason; placed = true;
        const input = box.querySelector("input, select, textarea");
        if (input) input.setAttribute("aria-invalid", "true");
        break;
      }
    }
    if (!placed) general.push(`${e.field}: ${e.reason}`);
  }
  const g = formEl.querySelector(".form-error");
  if (g) g.textContent = general.length ? general.join("; ") : (problem.errors?.length ? "" : problem.message);
  const first = formEl.querySelector("[aria-invalid]") || g;
  if (first && first.focus) first.focus();
}
