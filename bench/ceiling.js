// The ceiling for `npm run bench`: the least a Worker can do in the same runtime (workerd through
// Miniflare) — answer a constant JSON body. Each route's throughput is reported as a ratio to it.
export default {
  fetch() {
    return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } });
  },
};
