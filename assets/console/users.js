// The Users panel: a profile as the public route serves it (through the SWR cache, whose
// state `X-Cache` tells), and the admin write of its name.

import { call, complain, problem } from "./api.js";
import { $, clearErrors, fieldError, h, say, time } from "./dom.js";

let shown = null; // the id looked up last

/** What each X-Cache value means for the copy that was served. */
const CACHE = {
  HIT: ["fresh", "served from the KV copy, younger than cacheTtlSeconds"],
  STALE: ["stale", "served from a KV copy older than cacheTtlSeconds, which is being refreshed from D1"],
  MISS: ["not cached", "read from D1 (no usable KV copy); it is cached now"],
};

export const lastLookedUp = () => shown;

async function lookup(id) {
  const answer = await call("GET", `/users/${encodeURIComponent(id)}`, { admin: false });
  if (answer.status === 400) return fieldError($("user-id"), problem(answer));
  if (!answer.ok && answer.status !== 404) return complain(answer, "Could not look it up");
  shown = id;
  const user = answer.status === 404 ? null : answer.body;
  $("user-shown-id").textContent = id;
  $("user-shown-name").textContent = user ? user.name : "no profile with this id";
  $("user-shown-updated").replaceChildren(user ? time(user.updatedAt) : "—");
  const [state, meaning] = CACHE[answer.cache] ?? ["unknown", "no X-Cache header"];
  if (user) $("user-cache").replaceChildren(h("strong", {}, state), ` (X-Cache: ${answer.cache}): ${meaning}`);
  else $("user-cache").textContent = "—";
  $("user-cache").dataset.state = user ? state : "none";
  $("user-name").value = user ? user.name : "";
  $("user-save").textContent = user ? "Save name" : "Create profile";
  $("user-result").hidden = false;
  say(user ? `Profile ${id}: ${state}.` : `No profile with id ${id}.`);
}

async function save(event) {
  event.preventDefault();
  clearErrors($("user-edit"));
  const answer = await call("PUT", `/admin/users/${encodeURIComponent(shown)}`, { body: { name: $("user-name").value } });
  if (answer.status === 400) return fieldError($("user-name"), problem(answer));
  if (!answer.ok) return complain(answer, "Not saved");
  await lookup(shown);
  say(`Saved the name of ${shown}. Its cached copy was dropped, so this read went to D1.`);
}

export function reset() {
  shown = null;
  $("user-result").hidden = true;
  $("user-id").value = "";
  for (const id of ["user-shown-id", "user-shown-name", "user-shown-updated", "user-cache"]) $(id).replaceChildren();
}

export function init() {
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors($("user-form"));
    const id = $("user-id").value.trim();
    if (!id) return fieldError($("user-id"), "Enter a profile id.");
    lookup(id);
  });
  $("user-edit").addEventListener("submit", save);
}
