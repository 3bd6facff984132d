// @ts-check
// The `DB` binding of one simulated location (see d1-network.js for what the simulation
// models). locations.js loads this module beside the built Worker in each simulated isolate
// (its entry passes the Worker `d1Binding(env)` as `DB`), so it imports nothing: every
// statement goes to the one D1 network object, with this location's name.

/** @typedef {{ constraint?: string, bookmark?: number }} Session */

/** The network every location's stand-in talks to. */
const network = (/** @type {any} */ env) => env.D1NET.get(env.D1NET.idFromName("d1"));

/** The number of writes a bookmark names, or null (as d1-network.js makes them). */
function writesOf(/** @type {string} */ bookmark) {
  const m = /^[0-9a-f]{8}-([0-9a-f]{8})-/.exec(bookmark);
  return m ? parseInt(m[1], 16) : null;
}

/** A bookmark in D1's shape carrying `n` writes. */
function bookmarkOf(/** @type {number} */ n) {
  return `00000000-${n.toString(16).padStart(8, "0")}-00000000-${"0".repeat(32)}`;
}

/**
 * D1's binding API at this location: `prepare`, `batch`, `withSession`, `getBookmark`. A
 * database object without a session behaves as D1's does: every statement on the primary.
 * @param {any} env the isolate's env (`D1NET`, `LOCATION`)
 * @param {Session} [session]
 */
export function d1Binding(env, session = { constraint: "first-primary" }) {
  const at = String(env.LOCATION);
  /** @param {{ sql: string, args: unknown[] }[]} statements */
  const run = async (statements) => {
    const answer = await network(env).run(at, session, statements);
    session.bookmark = answer.bookmark;
    // After its first statement a session is sequentially consistent: its bookmark rules.
    if (session.constraint === "first-unconstrained") delete session.constraint;
    return answer.results;
  };
  /** @param {string} sql @param {unknown[]} args */
  const statement = (sql, args) => ({
    sql,
    args,
    bind: (/** @type {unknown[]} */ ...values) => statement(sql, values),
    all: async () => (await run([{ sql, args }]))[0],
    run: async () => (await run([{ sql, args }]))[0],
    first: async (/** @type {string | undefined} */ column) => {
      const row = (await run([{ sql, args }]))[0].results?.[0] ?? null;
      return column === undefined || row === null ? row : row[column];
    },
    raw: async () => {
      const rows = (await run([{ sql, args }]))[0].results ?? [];
      return rows.map((/** @type {object} */ r) => Object.values(r));
    },
  });
  return {
    prepare: (/** @type {string} */ sql) => statement(sql, []),
    batch: (/** @type {{ sql: string, args: unknown[] }[]} */ statements) =>
      run(statements.map((s) => ({ sql: s.sql, args: s.args }))),
    withSession(/** @type {string | undefined} */ constraintOrBookmark) {
      const c = constraintOrBookmark ?? "first-unconstrained";
      const n = writesOf(c);
      if (c !== "first-primary" && c !== "first-unconstrained" && n === null) {
        throw new Error(`D1_ERROR: invalid bookmark ${c}`);
      }
      return d1Binding(env, n === null ? { constraint: c } : { bookmark: n });
    },
    getBookmark: () => (session.bookmark === undefined ? null : bookmarkOf(session.bookmark)),
  };
}
