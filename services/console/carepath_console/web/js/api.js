// Calls to the console's own API (same origin, session cookie, CSRF token header).
let me = null;
export class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status; this.errors = Array.isArray(body.errors) ? body.errors : [];
  }
}
async function parse(resp) {
  const text = await resp.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch { body = { detail: text.slice(0, 200) }; }
  if (!resp.ok) throw new Problem(resp.status, body);
  return body;
}
export async function whoami() {
  const r = await fetch("/api/me", { credentials: "same-origin" });
  me = r.ok ? await r.json() : null;
  return me;
}
export const current = () => me;
export async function get(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  return parse(await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }));
}
export async function post(path, body) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (me) headers["X-CSRF-Token"] = me.csrf;
  return parse(await fetch(path, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body || {}) }));
}
