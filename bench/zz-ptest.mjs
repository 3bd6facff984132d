import { profile } from "./profile.mjs";
import { ROUTES, ceilingFor } from "./routes.mjs";
import { hasTool } from "./common.mjs";
const only = new RegExp(process.argv[2] ?? "health");
const r = await profile({ routes: ROUTES.filter(r => only.test(r.name)), ceilingFor, port: 8826, ceilingPort: 8827, duration: "4s", connections: 8, noInstructions: true });
for (const [k, v] of Object.entries(r.stages)) { console.log("==", k, v.requests); for (const [s, us] of Object.entries(v.stages)) console.log(String(us).padStart(8), s); }
