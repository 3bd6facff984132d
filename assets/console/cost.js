// The Cost panel: the storage work of every request this page made, from the
// `Server-Timing` of its answer, and a button that sends a few typical requests.

import { call } from "./api.js";
import * as config from "./config.js";
import { $, h, say } from "./dom.js";
import * as users from "./users.js";

const KEEP = 50;
const rows = []; // newest first

/** Notes one answered request (the api module's `measured` hook). */
export function record(request) {
  rows.unshift(request);
  rows.length = Math.min(rows.length, KEEP);
  if (!$("cost-rows").closest("[hidden]")) render();
}

const cell = (v) => h("td", {}, v ?? "—");

function render() {
  $("cost-rows").replaceChildren(
    ...rows.map(({ method, path, status, work }) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("code", {}, `${method} ${path}`)),
        cell(status),
        ...(work
          ? [work.reads, work.writes, work.lists, work.deletes, work.kvMs.toFixed(1), work.queries, work.d1Ms.toFixed(1)].map(cell)
          : Array.from({ length: 7 }, () => cell(null))),
      ),
    ),
  );
  if (!rows.length) $("cost-rows").append(h("tr", {}, h("td", { colspan: 9 }, "No request yet.")));
}

/** Typical requests: public reads, the admin reads, and a profile read twice (miss, then hit). */
async function samples() {
  const flag = config.flagNames()[0] ?? "newCheckout";
  const requests = [
    ["/health", false],
    ["/config", false],
    [`/flags/${encodeURIComponent(flag)}`, false],
    ["/admin/config", true],
    ["/admin/config/history?limit=20", true],
    ["/admin/sessions?limit=25", true],
  ];
  const user = users.lastLookedUp();
  if (user) requests.push([`/users/${encodeURIComponent(user)}`, false], [`/users/${encodeURIComponent(user)}`, false]);
  for (const [path, admin] of requests) await call("GET", path, { admin });
  render();
  say(`Sent ${requests.length} sample requests; their storage work is at the top of the table.`);
}

export const open = render;

export function reset() {
  rows.length = 0;
  $("cost-rows").replaceChildren();
}

export function init() {
  $("cost-run").addEventListener("click", samples);
}
