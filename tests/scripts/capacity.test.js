// @ts-check
// The capacity model (bench/capacity.mjs, docs/capacity.md) on the committed
// bench/results.json and bench/workload.json: it runs, names the first limit to break, scales
// as a model must (twice the traffic, twice every rate that grows with it; the revocation feed,
// strict prunes and housekeeping grow with isolates, renewals with sessions), models the code
// as it is (prefs revalidation on replicas, one feed statement per read, D1's size a steady
// state that housekeeping keeps), and docs/capacity.md holds what it writes. No Worker is
// booted.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = new URL("../..", import.meta.url).pathname;
const SCRIPT = join(ROOT, "bench/capacity.mjs");
const dir = mkdtempSync(join(tmpdir(), "edgestate-capacity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * @typedef {{ id: string, grows: "traffic" | "sessions" | "isolates" | "admin", perSecond: Record<string, number> }} Flow
 * @typedef {{ id: string, perSecond: number, fixedPerSecond: number, limit: number, utilisation: number, breaksAt: number | null, breaksAtRps: number | null }} Resource
 * @typedef {{ prunedPerHour: number, expiringPerHour: { sessions: number, revocations: number }, keepsUp: boolean }} Housekeeping
 * @typedef {{ d1SessionRows: number, d1SteadyBytes: number, d1GrowthBytesPerDay: number, d1DaysToFull: number | null,
 *   d1Growth: { sessions: number, revocations: number, configHistory: number } }} Sizes
 * @typedef {{ flows: Flow[], resources: Resource[], first: { id: string, label: string, breaksAt: number, breaksAtRps: number },
 *   workload: { isolates: number }, housekeeping: Housekeeping, sizes: Sizes }} Model
 */

/** @param {string[]} args */
function run(args) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The model as JSON.
 * @param {string[]} args
 * @returns {Model}
 */
function model(args = []) {
  const r = run(["--json", ...args]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/**
 * A workload file holding only `entries` (the rest comes from bench/workload.json).
 * @param {string} name
 * @param {Record<string, unknown>} entries
 */
function workload(name, entries) {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(entries));
  return path;
}

/** @param {Model} m @param {string} id */
function flow(m, id) {
  const f = m.flows.find((x) => x.id === id);
  if (!f) throw new Error(`no flow ${id}`);
  return f;
}

/** @param {Model} m @param {string} id */
function resource(m, id) {
  const r = m.resources.find((x) => x.id === id);
  if (!r) throw new Error(`no resource ${id}`);
  return r;
}

describe("npm run capacity", () => {
  it("runs on the committed results and workload, names the first limit and says what is measured", () => {
    const r = run([]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/The first limit to break is the .+, at [\d.,]+× the stated workload \([\d,]+ requests\/s\)/);
    expect(r.stdout).toContain("**Measured** by `npm run bench`");
    expect(r.stdout).toContain("**Assumed**");
    for (const heading of ["Against the limits", "Size", "Monthly cost"]) expect(r.stdout).toContain(`### ${heading}`);
    const m = model();
    // JSON has no Infinity: a limit that never breaks has breaksAt null.
    const at = (/** @type {Resource} */ r) => r.breaksAt ?? Infinity;
    const first = m.resources.reduce((a, b) => (at(b) < at(a) ? b : a));
    expect(m.first.id).toBe(first.id);
    expect(m.first.breaksAt).toBeGreaterThan(0);
  });

  it("twice the workload doubles every rate that grows with traffic or sessions, and nothing else", () => {
    const [one, two] = [model(["--scale", "1"]), model(["--scale", "2"])];
    for (const f of one.flows) {
      const g = flow(two, f.id);
      const factor = f.grows === "traffic" || f.grows === "sessions" ? 2 : 1;
      for (const [k, v] of Object.entries(f.perSecond)) {
        expect(g.perSecond[k], `${f.id} ${k}`).toBeCloseTo(v * factor, 6);
      }
    }
    expect(one.flows.filter((f) => f.grows === "traffic").length).toBeGreaterThan(5);
  });

  it("utilisation grows linearly with requests/s, and each limit breaks at the same requests/s", () => {
    const runs = [1, 2, 3].map((k) => model(["--scale", String(k)]));
    for (const r of runs[0].resources) {
      const [u1, u2, u3] = runs.map((m) => resource(m, r.id).utilisation);
      expect(u3 - u2, r.id).toBeCloseTo(u2 - u1, 9);
      expect(u2 - u1, r.id).toBeCloseTo((r.perSecond - r.fixedPerSecond) / r.limit, 9);
      const rps = r.breaksAtRps;
      for (const m of runs) {
        const other = resource(m, r.id).breaksAtRps;
        if (rps === null || other === null) expect(other, r.id).toBe(rps);
        else expect(other / rps, r.id).toBeCloseTo(1, 9);
      }
    }
  });

  it("renewal writes grow with active sessions; the revocation feed's queries do not", () => {
    const base = model();
    const more = model(["--workload", workload("sessions.json", { activeSessions: 2_000_000 })]);
    expect(flow(more, "renewals").perSecond.d1Writes).toBeCloseTo(2 * flow(base, "renewals").perSecond.d1Writes, 6);
    expect(flow(more, "revocationFeed").perSecond.d1Reads).toBe(flow(base, "revocationFeed").perSecond.d1Reads);
    expect(flow(base, "renewals").perSecond.d1Writes).toBeCloseTo(1_000_000 / 3600, 6);
    // Raising renewAfterSeconds is the remedy the page gives: 4 h, a quarter of the writes.
    const rarer = model(["--workload", workload("renew.json", { renewAfterSeconds: 14_400 })]);
    expect(flow(rarer, "renewals").perSecond.d1Writes).toBeCloseTo(flow(base, "renewals").perSecond.d1Writes / 4, 6);
    // More isolates, more feed reads, the same renewals.
    const wider = model(["--workload", workload("isolates.json", { isolatesPerLocation: 8 })]);
    expect(flow(wider, "revocationFeed").perSecond.d1Reads).toBeCloseTo(2 * flow(base, "revocationFeed").perSecond.d1Reads, 6);
    expect(flow(wider, "renewals").perSecond.d1Writes).toBe(flow(base, "renewals").perSecond.d1Writes);
  });

  it("prefs revalidation reads a replica, never the primary", () => {
    const m = model();
    const revalidation = flow(m, "prefsRevalidation").perSecond;
    expect(revalidation.d1Reads + revalidation.d1Writes).toBe(0);
    expect(revalidation.d1Replica).toBeGreaterThan(0);
    const replicaReads = m.flows.reduce((a, f) => a + f.perSecond.d1Replica, 0);
    expect(replicaReads).toBeCloseTo(revalidation.d1Replica + flow(m, "prefsKvMisses").perSecond.d1Replica, 6);
    const { stdout } = run([]);
    expect(stdout).not.toMatch(/revalidate through a replica/);
    expect(stdout).toMatch(/\*\*Replicas\*\*.*assumed to do [\d,]+ queries\/s/);
  });

  it("strict prunes: once per window and isolate, whatever the clients", () => {
    const base = model();
    const prunes = (/** @type {Model} */ m) => flow(m, "strictPrunes").perSecond.d1Writes;
    expect(flow(base, "strictPrunes").grows).toBe("isolates");
    expect(prunes(base)).toBeCloseTo(base.workload.isolates / 60, 9);
    expect(prunes(model(["--scale", "3"]))).toBe(prunes(base));
    expect(prunes(model(["--workload", workload("prune-isolates.json", { isolatesPerLocation: 8 })]))).toBeCloseTo(2 * prunes(base), 9);
    expect(prunes(model(["--workload", workload("prune-window.json", { rateLimitWindowSeconds: 120 })]))).toBeCloseTo(prunes(base) / 2, 9);
    const none = model(["--workload", workload("no-strict.json", { strictGroups: [] })]);
    expect(prunes(none)).toBe(0);
    expect(flow(none, "strictLeases").perSecond.d1Writes).toBe(0);
  });

  it("the revocation feed is one statement per read: 1 per isolate per 5 s, or as measured without housekeeping", () => {
    const base = model();
    const results = JSON.parse(readFileSync(join(ROOT, "bench/results.json"), "utf8"));
    // Not measured (a results.json without the sessions-at-scale runs): from the code.
    const unmeasured = join(dir, "results-unmeasured.json");
    writeFileSync(unmeasured, JSON.stringify({ ...results, sessionsScale: undefined }));
    expect(flow(model(["--results", unmeasured]), "revocationFeed").perSecond.d1Reads).toBeCloseTo(base.workload.isolates / 5, 9);
    /** A results.json with the committed one's request paths and these sessions-at-scale runs. @param {string} name @param {object[]} runs */
    const measured = (name, runs) => {
      const path = join(dir, name);
      writeFileSync(path, JSON.stringify({ ...results, sessionsScale: { runs } }));
      return path;
    };
    const now = measured("results-feed.json", [
      { sessions: 60, d1PerSecond: 0.3, feedPerSecond: 0.2, housekeeping: 2 },
      { sessions: 600, d1PerSecond: 0.35, feedPerSecond: 0.25, housekeeping: 2 },
    ]);
    expect(flow(model(["--results", now]), "revocationFeed").perSecond.d1Reads).toBeCloseTo(base.workload.isolates * 0.25, 9);
    const older = measured("results-older.json", [{ sessions: 600, d1PerSecond: 0.4 }]);
    expect(flow(model(["--results", older]), "revocationFeed").perSecond.d1Reads).toBeCloseTo(base.workload.isolates * 0.4, 9);
  });

  it("housekeeping: two statements per isolate and hour, and whether 500 an hour per isolate keeps up with what expires", () => {
    const base = model();
    const hk = flow(base, "housekeeping");
    expect(hk.grows).toBe("isolates");
    expect(hk.perSecond.d1Writes).toBeCloseTo((base.workload.isolates * 2) / 3600, 9);
    expect(base.housekeeping.prunedPerHour).toBe(base.workload.isolates * 500);
    expect(base.housekeeping.expiringPerHour.sessions).toBeCloseTo(50_000 * 0.0003 * 3600, 6);
    expect(base.housekeeping.keepsUp).toBe(true);
    expect(run([]).stdout).toContain("**Housekeeping keeps up**");
    // One isolate cannot delete 54,000 sessions an hour: they pile up, and D1 grows.
    const few = model(["--workload", workload("one-isolate.json", { locations: 1, isolatesPerLocation: 1 })]);
    expect(few.housekeeping.keepsUp).toBe(false);
    expect(few.sizes.d1Growth.sessions).toBeGreaterThan(0);
    expect(run(["--workload", join(dir, "one-isolate.json")]).stdout).toContain("**Housekeeping does not keep up**");
  });

  it("D1's size is a steady state: the logins of the idle lifetime and a day; only config history grows", () => {
    const base = model();
    const s = base.sizes;
    expect(s.d1Growth.sessions).toBe(0);
    expect(s.d1Growth.revocations).toBe(0);
    expect(s.d1GrowthBytesPerDay).toBe(s.d1Growth.configHistory);
    const logins = 50_000 * 0.0003;
    expect(s.d1SessionRows / (logins * (1 + 1) * 86_400)).toBeCloseTo(1, 4);
    const shorter = model(["--workload", workload("idle.json", { sessionIdleSeconds: 7_200 })]);
    expect(shorter.sizes.d1SessionRows).toBeLessThan(s.d1SessionRows);
    // Without admin writes nothing grows: never full.
    const quiet = model(["--workload", workload("quiet.json", { adminConfigWritesPerHour: 0 })]);
    expect(quiet.sizes.d1GrowthBytesPerDay).toBe(0);
    expect(quiet.sizes.d1DaysToFull).toBeNull(); // Infinity in JSON
    expect(run(["--workload", join(dir, "quiet.json")]).stdout).toMatch(/\| D1 database \|.*\| never full/);
  });

  it("refuses a workload whose mix does not sum to 1", () => {
    const r = run(["--workload", workload("bad-mix.json", { mix: { "GET /prefs": 0.5 } })]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/sum to/);
  });

  it("docs/capacity.md holds what the script writes (--check), and --check notices a change", () => {
    const r = run(["--check"]);
    expect(r.status, `${r.stderr}\nAfter npm run bench, run npm run capacity -- --write`).toBe(0);
    const doc = readFileSync(join(ROOT, "docs/capacity.md"), "utf8");
    const changed = join(dir, "capacity.md");
    writeFileSync(changed, doc.replace("<!-- capacity:end -->", "an edit by hand\n<!-- capacity:end -->"));
    const stale = run(["--check", "--doc", changed]);
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain("npm run capacity -- --write");
  });
});
