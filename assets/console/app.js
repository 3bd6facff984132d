// The console's entry: sign-in, the panels (one shown at a time, chosen by the URL's
// fragment), sign-out. Until the admin API accepts the token, the page shows the sign-in
// form and nothing else; the panels hold no data of their own. Behind Cloudflare Access
// (ACCESS_TEAM_DOMAIN and ACCESS_AUD set) the admin API admits the signed-in person without
// a token, and the console opens at once; signing out then ends the Access session.

import { call, on, problem, token } from "./api.js";
import * as config from "./config.js";
import * as cost from "./cost.js";
import { $, alarm, clearErrors, fieldError, say } from "./dom.js";
import * as history from "./history.js";
import * as sessions from "./sessions.js";
import * as tokens from "./tokens.js";
import * as users from "./users.js";

const PANELS = { config, history, sessions, users, tokens, cost };

/** Back to the sign-in form, with every panel emptied. */
function signOut(message) {
  token.clear();
  for (const panel of Object.values(PANELS)) panel.reset();
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("login").hidden = false;
  if (message) alarm(message);
  $("token").focus();
}

/** Shows the panel the fragment names (Config by default) and opens it. */
function route() {
  const wanted = location.hash.slice(1);
  const name = Object.hasOwn(PANELS, wanted) ? wanted : "config";
  for (const section of document.querySelectorAll("[data-panel]")) section.hidden = section.dataset.panel !== name;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.hash === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("status").textContent = $("alert").textContent = "";
  PANELS[name].open?.();
  $(`${name}-title`).focus();
}

/** Signed in: the config answer that proved the token is the Config panel's first state. */
function enter(answer) {
  config.show(answer);
  config.loadUsage();
  $("login").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  route();
}

async function signIn(event) {
  event.preventDefault();
  clearErrors($("login-form"));
  const candidate = $("token").value.trim();
  if (!candidate) return fieldError($("token"), "Enter the admin token.");
  const answer = await call("GET", "/admin/config", { credential: candidate });
  if (!answer.ok) {
    const message =
      answer.status === 401
        ? "This token was refused: it is neither the Worker's ADMIN_TOKEN nor a scoped token still in use."
        : `Could not sign in: ${problem(answer)}`;
    fieldError($("token"), message);
    return alarm(message);
  }
  token.set(candidate);
  $("token").value = "";
  enter(answer);
  say("Signed in.");
}

/** Whether Cloudflare Access, not a token, admitted this tab. */
let viaAccess = false;

async function resume() {
  // Without a token the request carries only what Cloudflare Access adds, if it is in front.
  const answer = await call("GET", "/admin/config", { admin: Boolean(token.get()) });
  if (answer.ok) {
    viaAccess = !token.get();
    enter(answer);
    if (viaAccess) say("Signed in through Cloudflare Access.");
    return;
  }
  signOut(answer.status === 401 ? "" : `Could not reach the admin API: ${problem(answer)}`);
}

on("refused", () => signOut("The admin token was refused (401): sign in again."));
on("measured", cost.record);
for (const panel of Object.values(PANELS)) panel.init();
$("login-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", () => {
  if (viaAccess) return location.assign("/cdn-cgi/access/logout");
  signOut();
  say("Signed out.");
});
window.addEventListener("hashchange", () => {
  if (!$("app").hidden) route();
});
resume();
