import { bootWorker, load, median } from "./common.mjs";
import { seed, ROUTES, resolve, ceilingFor } from "./routes.mjs";
import { migrationStatements } from "../tests/helpers.js";
const app = await bootWorker({ scriptPath: process.env.S ?? "build/index.js", port: 8826, storage: true });
const ceil = await bootWorker({ scriptPath: "bench/ceiling.js", port: 8827, storage: true });
const kv = await app.mf.getKVNamespace("CACHE"); const db = await app.mf.getD1Database("DB");
await db.batch(migrationStatements().map((s) => db.prepare(s)));
const s = await seed(app.base, (t) => kv.put("config:app", t));
const ck = await ceil.mf.getKVNamespace("CACHE"); const keys = (await kv.list()).keys.map(k => k.name).filter(k => !k.startsWith("rl:"));
for (const k of keys) await ck.put(k, await kv.get(k));
for (const r of ROUTES.filter(r => new RegExp(process.argv[2]).test(r.name))) {
  const route = resolve(r, s), cr = ceilingFor(r, keys);
  const res = { a: [], c: [] };
  await load(app.base, route, {}, { duration: "1s", connections: 8 }); await load(ceil.base, cr, {}, { duration: "1s", connections: 8 });
  for (let i = 0; i < Number(process.env.R ?? 4); i++) {
    res.c.push((await load(ceil.base, cr, { w: () => ceil.pids }, { duration: "3s", connections: 8 })).cpuUsPerRequest.w);
    res.a.push((await load(app.base, route, { w: () => app.pids }, { duration: "3s", connections: 8 })).cpuUsPerRequest.w);
  }
  console.log(r.name, "app", median(res.a), "ceiling", median(res.c), "over", (median(res.a) - median(res.c)).toFixed(1), JSON.stringify(res));
}
await app.mf.dispose(); await ceil.mf.dispose();
