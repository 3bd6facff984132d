// @ts-check
// Workers KV across locations, simulated in workerd for the location tests (locations.js).
// This file is the network; kv-location.js is the binding each location's Worker sees.
//
// Local KV (Miniflare) is one strongly consistent namespace: it has no locations, no
// propagation delay and no write-rate limit. This module puts a stand-in with KV's binding
// API in front of the Worker's `CACHE` binding, one per location, backed by real local KV
// (one namespace per location), and models what the Worker must survive at the edge:
//
// - Propagation: a write (put or delete) is visible at once in the location that made it,
//   and reaches every other location `delayMs` later. Replication is applied lazily: every
//   operation at a location first applies the writes addressed to it whose delay has passed,
//   so no timer outlives a request.
// - Last writer wins: each location remembers the origin time of the write it holds per key;
//   a replicated write older than that is dropped (a delete is a write like any other).
// - TTLs and metadata travel with the write: the copy in another location expires at the
//   same absolute time as the original (local KV refuses an expiry under 60 s from now, so
//   a copy arriving with less than that left is stored for 60 s and hidden from reads and
//   listings once its real expiry passes) and carries the same metadata.
// - One write per second per key: a second put or delete of a key within 1,000 ms of the
//   last accepted one, from any location, is refused as KV refuses it: the binding throws
//   "KV PUT failed: 429 Too Many Requests" (the Worker's adapter reports a storage error).
//   Deletes count as writes (the stricter reading of KV's documented limit).
// - `get` (one key or up to 100 in a Map), `getWithMetadata` (any type, `stream` included:
//   the value's stream crosses to the caller's isolate over RPC, where the Worker cancels it
//   unread when the metadata tells it the value is what it holds), `put`, `delete` and
//   `list` (prefix, limit, cursor, with each key's expiration and metadata).
//
// For races, a test can slow one location's puts down (`/slow`): a put there whose key
// starts with a prefix waits that long (or, with `ms: null`, until a new `/slow` list no
// longer holds it) before it takes effect, as a write stuck in flight; `/in-flight` lists the
// puts held now, so a test can wait for one to be under way.
//
// Not modelled: KV's edge cache as something apart from propagation (`cacheTtl` is
// ignored; `delayMs` stands for both), partial or reordered delivery between locations,
// and KV's own outages (the security suite boots the Worker without a binding for those).
//
// Every operation of every location runs through one Durable Object (`KvNetwork`), one at a
// time, so last-writer-wins and the write rule are exact. Its log of writes (accepted and
// refused) is what the tests read to count writes per key per second.
import { DurableObject } from "cloudflare:workers";

/**
 * @typedef {{ metadata?: unknown, expiration?: number, expirationTtl?: number }} PutOptions
 * @typedef {{ target: string, key: string, op: "put" | "delete", value?: string, opts: { metadata?: unknown }, at: number, seq: number, expiresAt?: number, due: number }} Pending
 *   A write on its way to another location.
 * @typedef {{ seq: number, location: string, key: string, op: string, at: number, accepted: boolean }} Logged
 * @typedef {{ location: string, prefix: string, ms: number | null }} SlowRule
 * @typedef {{ location: string, key: string, release: () => void }} Flight
 */

const WRITE_INTERVAL_MS = 1000;
const MIN_TTL_S = 60;

export class KvNetwork extends DurableObject {
  /** @param {DurableObjectState} ctx @param {Record<string, any>} env */
  constructor(ctx, env) {
    super(ctx, env);
    this.delayMs = Number(env.DELAY_MS ?? 0);
    this.locations = String(env.LOCATIONS).split(",");
    /** Writes on their way to other locations. @type {Pending[]} */
    this.pending = [];
    /** `${location}\n${key}` → {at, seq, expiresAt} of the write that location holds. */
    /** @type {Map<string, { at: number, seq: number, expiresAt?: number }>} */
    this.held = new Map();
    /** key → time of its last accepted write, anywhere. */
    /** @type {Map<string, number>} */
    this.lastWrite = new Map();
    /** Every write attempt. @type {Logged[]} */
    this.log = [];
    this.seq = 0;
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
    /** Puts to hold in flight (ms null: until released). @type {SlowRule[]} */
    this.slow = [];
    /** Puts held in flight now. @type {Flight[]} */
    this.inFlight = [];
  }

  /**
   * Whether a rule of `this.slow` holds a put of `key` at `location`.
   * @param {string} location @param {string} key
   */
  holdFor(location, key) {
    return this.slow.find((s) => s.location === location && key.startsWith(s.prefix));
  }

  /**
   * Runs `fn` after every operation already queued: one operation at a time.
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  serial(fn) {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** @param {string} location */
  ns(location) {
    const ns = this.env[`KV_${location}`];
    if (!ns) throw new Error(`unknown location ${location}`);
    return ns;
  }

  /**
   * Applies the writes addressed to `location` whose delay has passed, oldest first.
   * @param {string} location @param {number} now
   */
  async arrive(location, now) {
    const due = this.pending.filter((p) => p.target === location && p.due <= now);
    if (due.length === 0) return;
    this.pending = this.pending.filter((p) => !due.includes(p));
    due.sort((x, y) => x.at - y.at || x.seq - y.seq);
    for (const p of due) {
      const id = `${location}\n${p.key}`;
      const held = this.held.get(id);
      if (held && (held.at > p.at || (held.at === p.at && held.seq > p.seq))) continue;
      const expired = p.expiresAt !== undefined && p.expiresAt * 1000 <= now;
      if (p.op === "delete" || expired) {
        await this.ns(location).delete(p.key);
      } else {
        /** @type {PutOptions} */
        const opts = { metadata: p.opts.metadata };
        if (p.expiresAt !== undefined) {
          opts.expiration = Math.max(p.expiresAt, Math.ceil(now / 1000) + MIN_TTL_S);
        }
        await this.ns(location).put(p.key, p.value, opts);
      }
      this.held.set(id, { at: p.at, seq: p.seq, expiresAt: p.expiresAt });
    }
  }

  /**
   * Whether a copy held at `location` has passed the expiry it carries from its origin.
   * @param {string} location @param {string} key @param {number} now
   */
  hidden(location, key, now) {
    const held = this.held.get(`${location}\n${key}`);
    return held?.expiresAt !== undefined && held.expiresAt * 1000 <= now;
  }

  /**
   * KV's write rule: throws as KV does if `key` was written less than a second ago.
   * @param {string} location @param {string} key @param {string} op @param {number} now
   */
  refuseTooSoon(location, key, op, now) {
    const last = this.lastWrite.get(key);
    if (last === undefined || now - last >= WRITE_INTERVAL_MS) return;
    this.log.push({ seq: ++this.seq, location, key, op, at: now, accepted: false });
    throw new Error(`KV ${op.toUpperCase()} failed: 429 Too Many Requests`);
  }

  /**
   * Logs an accepted write; returns its sequence number.
   * @param {string} location @param {string} key @param {string} op @param {number} now
   */
  accept(location, key, op, now) {
    this.log.push({ seq: ++this.seq, location, key, op, at: now, accepted: true });
    this.lastWrite.set(key, now);
    return this.seq;
  }

  /**
   * Records an accepted write at its origin and sends it to every other location.
   * @param {string} location @param {string} key @param {"put" | "delete"} op @param {string | undefined} value
   * @param {PutOptions | undefined} opts @param {number} seq @param {number} now
   */
  spread(location, key, op, value, opts, seq, now) {
    let expiresAt;
    if (opts?.expiration !== undefined) expiresAt = Number(opts.expiration);
    else if (opts?.expirationTtl !== undefined) expiresAt = Math.floor(now / 1000) + Number(opts.expirationTtl);
    this.held.set(`${location}\n${key}`, { at: now, seq, expiresAt });
    for (const target of this.locations) {
      if (target === location) continue;
      this.pending.push({ target, key, op, value, opts: { metadata: opts?.metadata }, at: now, seq, expiresAt, due: now + this.delayMs });
    }
  }

  /** @param {string} location @param {string | string[]} keys @param {unknown} [opts] */
  async get(location, keys, opts) {
    return this.serial(async () => {
      const now = Date.now();
      await this.arrive(location, now);
      const value = await this.ns(location).get(keys, opts);
      if (!Array.isArray(keys)) return this.hidden(location, keys, now) ? null : value;
      for (const key of keys) if (this.hidden(location, key, now)) value.set(key, null);
      return value;
    });
  }

  /** @param {string} location @param {string | string[]} keys @param {unknown} [opts] */
  async getWithMetadata(location, keys, opts) {
    return this.serial(async () => {
      const now = Date.now();
      await this.arrive(location, now);
      const value = await this.ns(location).getWithMetadata(keys, opts);
      const absent = { value: null, metadata: null, cacheStatus: null };
      if (!Array.isArray(keys)) return this.hidden(location, keys, now) ? absent : value;
      for (const key of keys) if (this.hidden(location, key, now)) value.set(key, absent);
      return value;
    });
  }

  /** @param {string} location @param {string} key @param {string} value @param {PutOptions} [opts] */
  async put(location, key, value, opts) {
    const hold = this.holdFor(location, key);
    if (hold) {
      /** @type {Flight} */
      const flight = { location, key, release: () => {} };
      const released = new Promise((resolve) => (flight.release = () => resolve(undefined)));
      this.inFlight.push(flight);
      const timer = hold.ms === null ? undefined : setTimeout(flight.release, hold.ms);
      await released;
      clearTimeout(timer);
      this.inFlight = this.inFlight.filter((f) => f !== flight);
    }
    return this.serial(async () => {
      const now = Date.now();
      await this.arrive(location, now);
      this.refuseTooSoon(location, key, "put", now);
      // Local KV checks the key, value, TTL and metadata limits: a put it refuses is no write.
      await this.ns(location).put(key, value, opts);
      const seq = this.accept(location, key, "put", now);
      this.spread(location, key, "put", value, opts, seq, now);
    });
  }

  /** @param {string} location @param {string} key */
  async delete(location, key) {
    return this.serial(async () => {
      const now = Date.now();
      await this.arrive(location, now);
      this.refuseTooSoon(location, key, "delete", now);
      await this.ns(location).delete(key);
      const seq = this.accept(location, key, "delete", now);
      this.spread(location, key, "delete", undefined, undefined, seq, now);
    });
  }

  /** @param {string} location @param {unknown} [opts] */
  async list(location, opts) {
    return this.serial(async () => {
      const now = Date.now();
      await this.arrive(location, now);
      const listed = await this.ns(location).list(opts);
      const keys = [];
      for (const k of listed.keys) {
        if (this.hidden(location, k.name, now)) continue;
        const expiresAt = this.held.get(`${location}\n${k.name}`)?.expiresAt;
        keys.push(expiresAt === undefined ? k : { ...k, expiration: expiresAt });
      }
      return { ...listed, keys };
    });
  }

  /**
   * The test's view: the write log, the delay, slow puts, and pending writes.
   * @param {Request} request
   */
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/log") {
      const prefix = url.searchParams.get("prefix") ?? "";
      return Response.json(this.log.filter((w) => w.key.startsWith(prefix)));
    }
    if (url.pathname === "/delay" && request.method === "PUT") {
      this.delayMs = Number(await request.text());
      return Response.json({ delayMs: this.delayMs });
    }
    if (url.pathname === "/slow" && request.method === "PUT") {
      this.slow = await request.json();
      for (const f of this.inFlight) if (!this.holdFor(f.location, f.key)) f.release();
      return Response.json(this.slow);
    }
    if (url.pathname === "/in-flight") {
      const prefix = url.searchParams.get("prefix") ?? "";
      return Response.json(this.inFlight.filter((f) => f.key.startsWith(prefix)).map(({ location, key }) => ({ location, key })));
    }
    if (url.pathname === "/pending") return Response.json(this.pending.map(({ value, ...p }) => p));
    return new Response("not found", { status: 404 });
  }
}

/** The network's own Worker: lets the tests read the write log and change the delay. */
export default {
  /** @param {Request} request @param {{ NETWORK: any }} env */
  fetch: (request, env) => env.NETWORK.get(env.NETWORK.idFromName("kv")).fetch(request),
};
