// @ts-check
// Bad inputs tried against paths no route declares: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).


export const route = "any other path";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "unknown path (`/.env`)",
    request: { path: "/.env" },
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "encoded slash (`/admin%2Fconfig`)",
    request: { path: "/admin%2Fconfig", admin: true },
    expect: { status: 404, code: "not_found" },
  },
];
