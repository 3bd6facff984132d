// Empties the function-table slots of the promise adapters that only wasm-streams' classes use.
//
//   node scripts/drop-stream-slots.mjs IN.wasm OUT.wasm
//
// `worker` 0.8.7 links wasm-streams' IntoUnderlyingSource, IntoUnderlyingSink and
// IntoUnderlyingByteSource whether or not a Worker streams a Rust body to JS. scripts/build.sh
// drops their exports; `wasm-opt -O` then removes the methods, but not the futures those
// methods handed to `js_sys::futures::future_to_promise`: each future's poll and drop functions
// are reached through Rust vtables in the data segment, and so sit in the function table, which
// wasm-bindgen exports. wasm-opt must keep every slot of an exported table, and with them some
// 11 KB of Wasm (4.4 KB gzip) that nothing can call any more.
//
// This script points those slots at one function that traps, so the next `wasm-opt -O` removes
// what only they reached. It runs after `wasm-opt --remove-unused-module-elements` has removed
// the code the dropped exports alone reached (scripts/build.sh). A Rust vtable in the data
// segment is [drop glue slot, size, align, method slots...]. The script finds the vtables whose
// drop glue is that of a `future_to_promise` future of a wasm-streams type (the name section
// says so: the build keeps names until its last step); their methods are the slots that follow,
// as long as they are `FnOnce` shims or `future_to_promise` closures. Rust takes the address of
// such functions only to put it in a vtable. A vtable's slots are emptied only when:
// - nothing refers to the vtable: its address is no `i32.const` in the code and no word in the
//   data, so nothing left in the module can build such a future (the byte search errs towards
//   "referred to": a match inside another instruction counts too);
// - no other vtable that something refers to holds one of its slots (a function merged with a
//   live one would be shared): every other word in the data equal to one of the slots is
//   checked as the drop glue or a method of a vtable starting up to six words before it.
// A future's vtable is referred to by the code of the future that spawned it, so the script
// repeats, each round after removing what the emptied slots alone reached, until a round
// empties nothing. It prints how many slots it emptied and any vtable it kept because another
// may share its slots; `npm run size` fails if wasm-streams code is still linked after the
// build, and the Wasm size test if the bytes come back. KEEP_EXPORTS=1 in scripts/build.sh
// skips it, with the export removal.
import { readFileSync, writeFileSync } from "node:fs";
import binaryen from "binaryen";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node scripts/drop-stream-slots.mjs IN.wasm OUT.wasm");
  process.exit(2);
}
const F = binaryen.Features;
const features =
  F.MutableGlobals | F.SignExt | F.NontrappingFPToInt | F.BulkMemory | F.Multivalue |
  F.ReferenceTypes | F.ExceptionHandling;
binaryen.setDebugInfo(true); // keep the names for the passes and the size attribution after
const bytes = readFileSync(input);
const mod = binaryen.readBinary(bytes, features);

const STREAM_FUTURE = /^core::ptr::drop_in_place<js_sys::futures::future_to_promise<.*wasm_streams::/;
const POW2 = new Set([1, 2, 4, 8, 16]);
const METHOD =
  /^(core::ops::function::FnOnce::call_once\{\{vtable\.shim\}\}|js_sys::futures::future_to_promise::\{\{closure\}\})/;

const TRAP = "edgestate_dead_slot";
mod.addFunction(TRAP, binaryen.none, binaryen.none, [], mod.unreachable());
let emptied = 0;
for (let round = emptyRound(bytes); round > 0; round = emptyRound(mod.emitBinary())) {
  emptied += round;
  mod.runPasses(["remove-unused-module-elements"]);
}
console.log(`drop-stream-slots: ${emptied} table slots of wasm-streams futures emptied`);
writeFileSync(output, mod.emitBinary());
mod.dispose();

// Empties the slots of the wasm-streams futures' vtables nothing refers to; returns how many.
function emptyRound(bytes) {
  const segments = [];
  for (let i = 0; i < mod.getNumElementSegments(); i++) {
    segments.push(binaryen.getElementSegmentInfo(mod.getElementSegmentByIndex(i)));
  }
  const table = segments.length === 1 ? segments[0] : null;
  const base = table && binaryen.getExpressionInfo(table.offset).value;
  if (!table || typeof base !== "number") {
    console.log("drop-stream-slots: not one active element segment at a constant offset");
    return 0;
  }
  const nameOf = (slot) => table.data[slot - base] ?? "";
  const isSlot = (w) => w >= base && w < base + table.data.length;

  // Every 4-byte-aligned word of the active data segments, by address.
  const words = new Map();
  for (const { at, data } of dataSegments(bytes)) {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let off = (4 - (at % 4)) % 4; off + 4 <= data.byteLength; off += 4) {
      words.set(at + off, view.getUint32(off, true));
    }
  }
  const where = new Map(); // slot index -> addresses holding it
  for (const [addr, value] of words) {
    if (isSlot(value)) {
      if (!where.has(value)) where.set(value, []);
      where.get(value).push(addr);
    }
  }
  // The code section's bytes, searched for `i32.const N` (0x41, then N as signed LEB128).
  const code = section(bytes, 10);
  const inCode = (n) => code.indexOf(Buffer.from([0x41, ...slebBytes(n)])) !== -1;
  const pointedTo = new Set(words.values());
  const referenced = (addr) => pointedTo.has(addr) || inCode(addr);
  // Whether [slot, size, align, slots...] could start at `v` and reach at least to `upTo`.
  const vtableAt = (v, upTo) => {
    if (!isSlot(words.get(v)) || !POW2.has(words.get(v + 8))) return false;
    for (let at = v + 12; at <= Math.max(upTo, v + 12); at += 4) {
      if (!isSlot(words.get(at))) return false;
    }
    return true;
  };

  const dead = new Set();
  table.data.forEach((name, k) => {
    if (!STREAM_FUTURE.test(name)) return;
    for (const vtable of where.get(base + k) ?? []) {
      const slots = [base + k];
      for (let at = vtable + 12; METHOD.test(nameOf(words.get(at))); at += 4) {
        slots.push(words.get(at));
      }
      if (!POW2.has(words.get(vtable + 8)) || slots.length === 1) continue; // not a vtable
      if (referenced(vtable)) continue; // live, or only reached from a future not yet emptied
      const own = (at) => at >= vtable && at < vtable + 4 * (slots.length + 2);
      // Another word equal to one of the slots matters if it can be the drop glue or a method
      // of a vtable something refers to: [slot, size, align, slots...] starting at most six
      // words before it. (Panic locations and lengths hold such numbers too.)
      const shared = slots.find((slot) =>
        (where.get(slot) ?? []).some(
          (at) =>
            !own(at) &&
            [0, 3, 4, 5, 6].some((i) => vtableAt(at - 4 * i, at) && referenced(at - 4 * i)),
        ),
      );
      if (shared !== undefined) {
        console.log(`drop-stream-slots: kept ${nameOf(shared)}: a live vtable may hold it`);
        continue;
      }
      for (const slot of slots) dead.add(slot);
    }
  });
  if (dead.size === 0) return 0;
  const names = table.data.map((name, k) => (dead.has(base + k) ? TRAP : name));
  mod.removeElementSegment(table.name);
  mod.addActiveElementSegment(table.table, table.name, names, mod.i32.const(base));
  return dead.size;
}

// The contents of a module's section `id` (10 code, 11 data).
function section(bytes, id) {
  let at = 8; // magic and version
  while (at < bytes.length) {
    const kind = bytes[at++];
    const [size, next] = uleb(bytes, at);
    if (kind === id) return bytes.subarray(next, next + size);
    at = next + size;
  }
  return Buffer.alloc(0);
}

// The active segments of memory 0 placed at an `i32.const` (what rustc emits); others skipped.
function dataSegments(bytes) {
  const data = section(bytes, 11);
  const out = [];
  let [count, at] = uleb(data, 0);
  while (count-- > 0) {
    const [flags, a] = uleb(data, at);
    at = a;
    let place = null;
    if (flags === 0 || flags === 2) {
      if (flags === 2) at = uleb(data, at)[1]; // memory index
      if (data[at] === 0x41) {
        const [value, next] = sleb(data, at + 1);
        if (data[next] === 0x0b) place = value;
      }
      while (data[at++] !== 0x0b); // to the end of the offset expression
    }
    const [size, b] = uleb(data, at);
    if (place !== null) out.push({ at: place, data: data.subarray(b, b + size) });
    at = b + size;
  }
  return out;
}

function uleb(bytes, at) {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, at];
  }
}

function sleb(bytes, at) {
  let value = 0;
  let shift = 0;
  let b;
  do {
    b = bytes[at++];
    value |= (b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  return [shift < 32 && b & 0x40 ? value | (-1 << shift) : value, at];
}

// `n` as signed LEB128.
function slebBytes(n) {
  const out = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
