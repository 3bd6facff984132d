// The Tokens panel: scoped admin tokens (for scripts and CI jobs), their creation and their
// revocation. The API returns a token once, in the answer that creates it: the panel shows it
// in a read-only field and keeps it nowhere else, and empties that field when another token
// is created, when the token is revoked, when the panel is opened again and when it is reset
// (signing out). Only the full admin (ADMIN_TOKEN, or a person signed in through Cloudflare
// Access) manages tokens: a scoped token gets 403, and the panel says so.

import { call, complain, problem } from "./api.js";
import { $, alarm, clearErrors, confirmed, fieldError, h, say, time } from "./dom.js";

const FORBIDDEN = "Only the full admin token (or Cloudflare Access) can manage tokens.";

const panel = () => document.querySelector('[data-panel="tokens"]');

/** A 403: this tab signed in with a scoped token. */
function forbidden() {
  $("tokens-forbidden").hidden = false;
  alarm(FORBIDDEN);
}

async function load() {
  const answer = await call("GET", "/admin/tokens");
  if (answer.status === 403) {
    $("token-rows").replaceChildren(h("tr", {}, h("td", { colspan: 5 }, "Not listed: this sign-in cannot manage tokens.")));
    return forbidden();
  }
  if (!answer.ok) return complain(answer, "Could not list the tokens");
  $("tokens-forbidden").hidden = true;
  const { tokens } = answer.body;
  $("token-rows").replaceChildren(...tokens.map(row));
  if (!tokens.length) $("token-rows").append(h("tr", {}, h("td", { colspan: 5 }, "No scoped token yet.")));
}

function row(t) {
  const revoke = async () => {
    const sure = await confirmed(
      `Revoke token ${t.name}?`,
      `Requests that send it are refused (401) from then on: whatever uses it stops working. ` +
        "A revoked token cannot be restored; create a new one instead.",
      "Revoke",
    );
    if (!sure) return say(`Token ${t.name} was kept.`);
    const answer = await call("DELETE", `/admin/tokens/${encodeURIComponent(t.name)}`);
    if (answer.status === 403) return forbidden();
    if (answer.status === 404) alarm(`Token ${t.name} was not found: it was revoked already.`);
    else if (!answer.ok) return complain(answer, "Not revoked");
    else say(`Revoked token ${t.name}.`);
    if ($("tokens-new-name").textContent === t.name) hideNew();
    $("tokens-name").focus();
    await load();
  };
  const label = `Revoke token ${t.name}`;
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, h("code", {}, t.name)),
    h("td", {}, t.scope),
    h("td", {}, time(t.createdAt)),
    h("td", { class: "long" }, t.createdBy ?? "—"),
    h("td", {}, h("button", { type: "button", class: "quiet", onclick: revoke, "aria-label": label }, "Revoke")),
  );
}

/** The token just created, in the one place it is shown. */
function showNew({ token, name, scope }) {
  $("tokens-new-name").textContent = name;
  $("tokens-new-scope").textContent = scope;
  $("tokens-new-value").value = token;
  $("tokens-new").hidden = false;
  $("tokens-new-value").focus();
  $("tokens-new-value").select();
}

function hideNew() {
  $("tokens-new-value").value = "";
  $("tokens-new-name").textContent = "";
  $("tokens-new-scope").textContent = "";
  $("tokens-new").hidden = true;
}

async function create(event) {
  event.preventDefault();
  clearErrors(panel());
  const input = $("tokens-name");
  const name = input.value.trim();
  if (!name) return fieldError(input, "Name the token first.");
  const scope = panel().querySelector('input[name="scope"]:checked')?.value ?? "read";
  const answer = await call("POST", "/admin/tokens", { body: { name, scope } });
  if (answer.status === 403) return forbidden();
  if (answer.status === 400) {
    // "name: …" is shown at the name; anything else (the scope is one of three radios) below the form.
    const message = problem(answer);
    if (message.startsWith("name")) fieldError(input, message);
    else $("tokens-error").textContent = message;
    return alarm(`Not created: ${message}`);
  }
  if (!answer.ok) return complain(answer, "Not created");
  input.value = "";
  showNew(answer.body);
  say(`Created token ${answer.body.name} with scope ${answer.body.scope}. Copy it now: it will not be shown again.`);
  await load();
}

async function copy() {
  const field = $("tokens-new-value");
  try {
    await navigator.clipboard.writeText(field.value);
    say("Copied the token.");
  } catch {
    field.focus();
    field.select();
    alarm("Could not copy it here: the token is selected, copy it from the keyboard.");
  }
}

/** Lists the tokens; a token created before the panel was left is no longer shown. */
export function open() {
  hideNew();
  clearErrors(panel());
  return load();
}

export function reset() {
  hideNew();
  clearErrors(panel());
  $("token-rows").replaceChildren();
  $("tokens-name").value = "";
  $("tokens-scope-read").checked = true;
  $("tokens-forbidden").hidden = true;
}

export function init() {
  $("tokens-form").addEventListener("submit", create);
  $("tokens-copy").addEventListener("click", copy);
  $("tokens-done").addEventListener("click", () => {
    hideNew();
    $("tokens-name").focus();
    say("The new token is no longer shown.");
  });
}
