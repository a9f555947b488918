import { get, post } from "../api.js";
import { el, teamName } from "../labels.js";

export async function signinView(root, done) {
  const opts = await get("/auth/options");
  const parts = [el("h1", {}, "Sign in")];
  if (opts.oidc) parts.push(el("p", {}, el("a", { href: "/auth/login", class: "button" }, "Sign in with your organisation")));
  if (opts.dev.length) {
    parts.push(el("h2", {}, "Development identities"),
      el("p", { class: "notice" }, "Development mode: choose who you are. This page does not exist in production."),
      el("ul", { class: "signin-list" }, opts.dev.map((who) => el("li", {}, el("button", {
        type: "button", class: "primary", "data-subject": who.subject,
        onclick: async () => { await post("/auth/dev", { subject: who.subject }); done(); },
      }, `${who.subject} — ${teamName(who.team)}, ${who.role.replace("_", " ")}`)))));
  }
  if (!opts.oidc && !opts.dev.length) parts.push(el("p", {}, "No sign-in method is configured."));
  root.replaceChildren(...parts);
}
