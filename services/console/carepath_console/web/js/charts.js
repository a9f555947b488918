// A horizontal bar chart in inline SVG, with a text alternative.
const NS = "http://www.w3.org/2000/svg";
export function barChart(title, entries, label = (k) => k) {
  const rows = entries.slice(0, 12);
  const max = Math.max(1, ...rows.map(([, v]) => v));
  const w = 360, bar = 18, gap = 6, left = 150, h = rows.length * (bar + gap) + 4;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${Math.max(h, 24)}`); svg.setAttribute("width", "100%");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ` + (rows.map(([k, v]) => `${label(k)} ${v}`).join(", ") || "none"));
  rows.forEach(([k, v], i) => {
    const y = i * (bar + gap) + 2;
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", left - 6); t.setAttribute("y", y + bar - 5); t.setAttribute("text-anchor", "end");
    t.textContent = label(k).slice(0, 24);
    const r = document.createElementNS(NS, "rect");
    r.setAttribute("x", left); r.setAttribute("y", y); r.setAttribute("height", bar);
    r.setAttribute("width", Math.max(2, ((w - left - 40) * v) / max)); r.setAttribute("fill", "#2c5aa0");
    const n = document.createElementNS(NS, "text");
    n.setAttribute("x", left + Math.max(2, ((w - left - 40) * v) / max) + 4); n.setAttribute("y", y + bar - 5);
    n.textContent = String(v);
    svg.append(t, r, n);
  });
  return svg;
}
