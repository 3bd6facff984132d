// The ceiling for `npm run bench`: the least a Worker can do in the same runtime (workerd) for
// a request, written in plain JS.
//
//  - Any path but /kv: a constant JSON body (what GET /health, and config and flags served
//    from the isolate's copy, compare with).
//  - /kv?get=k1,k2&bulk=k3,k4: the same KV work a route does, done the plainest way (one get
//    per key of `get`, one bulk get of `bulk`), and the values returned as JSON. Routes that
//    read KV compare with this, so that "over the ceiling" is edgestate's own cost, not the
//    local KV simulator's (which the edge does not bill as CPU time).
//  - A request with a body (POST): the body is read and parsed first, as any Worker answering
//    it must (the batch's ids, the OFREP context).
//  - PUT with a JSON object of headers: every later answer carries them besides
//    `Content-Type` (the bench sends a route's own response headers, Server-Timing, RateLimit
//    and the rest the contract asks of any Worker, so that their cost in the runtime is in the
//    ceiling too; a ceiling never sent a PUT answers with `Content-Type` alone).
//  - PUT /body: its text becomes the constant body (bench/flags.mjs sends a bulk OFREP
//    answer of thousands of flags, so that the ceiling's answer is as large as the route's
//    and the runtime's work to send it is in the ceiling too).
let headers = { "content-type": "application/json" };
let constant = '{"status":"ok"}';

export default {
  async fetch(request, env) {
    if (request.method === "PUT" && new URL(request.url).pathname === "/body") {
      constant = await request.text();
      return new Response(null, { status: 204 });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      const body = JSON.parse(await request.text());
      if (request.method === "PUT") {
        headers = { ...body, "content-type": "application/json" };
        return new Response(null, { status: 204 });
      }
    }
    const url = new URL(request.url);
    if (url.pathname !== "/kv") return new Response(constant, { headers });
    const keys = (name) => (url.searchParams.get(name) ?? "").split(",").filter(Boolean);
    const values = [];
    for (const key of keys("get")) values.push(await env.CACHE.get(key));
    const bulk = keys("bulk");
    if (bulk.length > 0) values.push(...(await env.CACHE.get(bulk)).values());
    return new Response(JSON.stringify(values), { headers });
  },
};
