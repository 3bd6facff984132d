// The Sessions panel: active sessions (all, or one user's) page by page, revocation of one
// session by its handle, and of every session of a user.

import { call, complain, problem } from "./api.js";
import { $, clearErrors, confirmed, fieldError, h, say, time } from "./dom.js";

let user = ""; // the listed user ("" for everyone)
let limit = 25;
let cursors = [null]; // cursors[i] starts page i
let page = 0;

async function load() {
  const query = new URLSearchParams({ limit: String(limit) });
  if (user) query.set("userId", user);
  if (cursors[page]) query.set("cursor", cursors[page]);
  const answer = await call("GET", `/admin/sessions?${query}`);
  if (answer.status === 400) return fieldError($("sessions-user"), problem(answer));
  if (!answer.ok) return complain(answer, "Could not list the sessions");
  const { sessions, cursor, listComplete } = answer.body;
  cursors[page + 1] = listComplete ? null : cursor;
  $("session-rows").replaceChildren(...sessions.map(row));
  if (!sessions.length) $("session-rows").append(h("tr", {}, h("td", { colspan: 7 }, "No active session.")));
  const whose = user ? `of ${user}` : "of every user";
  const more = listComplete ? "" : "; more on the next page";
  $("sessions-summary").textContent = `Page ${page + 1}: ${sessions.length} active session${sessions.length === 1 ? "" : "s"} ${whose}${more}.`;
  $("sessions-prev").disabled = page === 0;
  $("sessions-next").disabled = listComplete;
  $("sessions-revoke-user").disabled = !user;
  $("sessions-revoke-user").textContent = user ? `Revoke all sessions of ${user}` : "Revoke all sessions of this user";
  // A paging button that just became disabled hands the focus to the other one.
  if (document.activeElement?.disabled) (page === 0 ? $("sessions-next") : $("sessions-prev")).focus();
}

function row(s) {
  const revoke = async () => {
    const answer = await call("DELETE", `/admin/sessions/${encodeURIComponent(s.handle)}`);
    if (!answer.ok) return complain(answer, "Not revoked");
    say(`Revoked the session ${s.handle} of ${s.userId}.`);
    $("sessions-user").focus();
    await load();
  };
  const label = `Revoke session ${s.handle ?? ""} of ${s.userId} (${s.email})`;
  return h(
    "tr",
    {},
    h("td", {}, s.userId),
    h("td", { class: "long" }, s.email),
    h("td", {}, time(s.createdAt)),
    h("td", {}, time(s.idleExpiresAt)),
    h("td", {}, time(s.expiresAt)),
    h("td", {}, h("code", {}, s.handle ?? "—")),
    h("td", {}, h("button", { type: "button", class: "quiet", disabled: !s.handle, onclick: revoke, "aria-label": label }, "Revoke")),
  );
}

async function revokeUser() {
  const who = user;
  const sure = await confirmed(
    `Revoke every session of ${who}?`,
    `${who} is signed out everywhere: this location at once, every location within 10 s.`,
    "Revoke all",
  );
  if (!sure) return;
  const answer = await call("DELETE", `/admin/users/${encodeURIComponent(who)}/sessions`);
  if (!answer.ok) return complain(answer, "Not revoked");
  say(`Revoked ${answer.body.revoked} session${answer.body.revoked === 1 ? "" : "s"} of ${who}.`);
  cursors = [null];
  page = 0;
  await load();
}

/** Lists the first page for the form as it stands (every user's sessions at first). */
export function open() {
  user = $("sessions-user").value.trim();
  limit = Number($("sessions-limit").value);
  cursors = [null];
  page = 0;
  return load();
}

export function reset() {
  user = "";
  cursors = [null];
  page = 0;
  $("session-rows").replaceChildren();
  $("sessions-summary").textContent = "";
  $("sessions-user").value = "";
  for (const id of ["sessions-prev", "sessions-next", "sessions-revoke-user"]) $(id).disabled = true;
}

export function init() {
  $("sessions-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors($("sessions-form"));
    open();
  });
  $("sessions-next").addEventListener("click", () => {
    page += 1;
    load();
  });
  $("sessions-prev").addEventListener("click", () => {
    page -= 1;
    load();
  });
  $("sessions-revoke-user").addEventListener("click", revokeUser);
}
