// Size attribution of the Worker's Wasm (`bash scripts/size.sh` runs it on a build that keeps
// function names: target/size/build/index_bg.wasm, the same code as build/).
//
// Reads the module's sections, the size of every function body and its name, groups the
// functions by contributor (our modules by path, everything else by crate), and prints the
// top contributors with their bytes and what each compresses to alone (gzip -9). Writes
// bench/size.json, which `npm run bench` puts in bench/results.json and docs/performance.md.
//
// Fails (exit 1) if any function of a crate the Worker must not link comes back: `url` and
// what it brings (`idna`, its Unicode tables, `form_urlencoded`, `percent_encoding`). `url`
// stays in `cargo tree` (the `worker` crate depends on it), but no code path may reach it.
// Reports how much of wasm-streams' code is linked (`streams`): scripts/build.sh removes the
// exports of its classes, but the futures their methods built stay reachable through the
// exported function table (docs/upstream.md).
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

// A crate path starts the name or follows `<`, `&` or a space; `Request::url::h…` (web-sys's
// binding of the platform's `request.url`) is a method named `url`, not the crate.
const FORBIDDEN = /(^|[<\s&])(url|idna|idna_adapter|form_urlencoded|percent_encoding|unicode_normalization|icu_\w+|utf8_iter)::/;
/** Whether a function name belongs to a crate the Worker must not link (`url[…]::` too). */
export const isForbidden = (name) => FORBIDDEN.test(name.replace(/\[[0-9a-f]+\]/g, ""));
const STREAMS = /wasm_streams::/;
const SECTION_NAMES = { 1: "types", 2: "imports", 3: "functions", 4: "tables", 5: "memory", 6: "globals", 7: "exports", 9: "elements", 10: "code", 11: "data", 12: "data count" };

/** Sections, function bodies (index, offset, size) and the name section's function names. */
export function parse(buf) {
  let p = 8;
  const leb = () => {
    let result = 0;
    let shift = 0;
    let byte;
    do {
      byte = buf[p++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  };
  const str = () => {
    const n = leb();
    const s = buf.toString("utf8", p, p + n);
    p += n;
    return s;
  };
  const sections = [];
  const bodies = [];
  const names = new Map();
  let imported = 0;
  while (p < buf.length) {
    const id = buf[p++];
    const size = leb();
    const end = p + size;
    let name = SECTION_NAMES[id] ?? `section ${id}`;
    if (id === 0) {
      name = `custom: ${str()}`;
      if (name === "custom: name") {
        while (p < end) {
          const sub = buf[p++];
          const subEnd = leb() + p;
          if (sub === 1) for (let i = leb(); i > 0; i--) names.set(leb(), str());
          p = subEnd;
        }
      }
    } else if (id === 2) {
      for (let i = leb(); i > 0; i--) {
        str();
        str();
        const kind = buf[p++];
        if (kind === 0) {
          leb();
          imported++;
        } else if (kind === 1) {
          p++;
          if (buf[p++] & 1) leb();
          leb();
        } else if (kind === 2) {
          if (buf[p++] & 1) leb();
          leb();
        } else if (kind === 3) {
          p += 2;
        } else if (kind === 4) {
          p++;
          leb();
        }
      }
    } else if (id === 10) {
      for (let i = 0, n = leb(); i < n; i++) {
        const bodySize = leb();
        bodies.push({ index: imported + i, offset: p, size: bodySize });
        p += bodySize;
      }
    }
    sections.push({ id, name, size });
    p = end;
  }
  for (const b of bodies) b.name = names.get(b.index) ?? `function ${b.index}`;
  return { sections, bodies };
}

const PRIMITIVE = /^(?:[iu](?:8|16|32|64|128|size)|f32|f64|bool|char|str|[A-Z])$/;

/** Who a function belongs to: an edgestate module, or a crate. */
export function contributor(fullName) {
  const name = fullName.replace(/\[[0-9a-f]+\]/g, "").replace(/::h[0-9a-f]{16}$/, "");
  if (/^__wbg|^__wbindgen|^__externref|externref shim|multivalue shim|^(fetch|intounderlying|__worker)/.test(name)) {
    return "wasm-bindgen exports and import shims";
  }
  const impl = /^<+(?:&(?:mut )?|dyn |\*(?:const|mut) |\[|\()*([\w]+)(?:::([\w]+))?(?:::([\w]+))?[^>]*? as (?:&|dyn )*([\w]+)/.exec(name);
  const plain = /^<*(?:&(?:mut )?|dyn )*([\w]+)(?:::([\w]+))?(?:::([\w]+))?/.exec(name);
  let [crate, a, b] = impl ? [impl[1], impl[2], impl[3]] : plain ? [plain[1], plain[2], plain[3]] : [name];
  if (impl && PRIMITIVE.test(crate)) [crate, a, b] = [impl[4], undefined, undefined];
  if (PRIMITIVE.test(crate)) crate = "core";
  if (crate === "edgestate") return `edgestate::${a}${["domain", "routes", "storage"].includes(a) && b ? `::${b}` : ""}`;
  if (["core", "alloc", "std", "__rustc", "compiler_builtins"].includes(crate)) return `Rust ${crate === "__rustc" ? "alloc" : crate}`;
  return crate;
}

export function attribute(buf) {
  const { sections, bodies } = parse(buf);
  const groups = new Map();
  for (const b of bodies) {
    const c = contributor(b.name);
    const g = groups.get(c) ?? { name: c, bytes: 0, functions: 0, parts: [] };
    g.bytes += b.size;
    g.functions++;
    g.parts.push(buf.subarray(b.offset, b.offset + b.size));
    groups.set(c, g);
  }
  const named = sections.filter((s) => s.name.startsWith("custom: name")).reduce((a, s) => a + s.size, 0);
  const total = buf.length - named;
  const data = sections.find((s) => s.name === "data")?.size ?? 0;
  const code = bodies.reduce((a, b) => a + b.size, 0);
  const rows = [...groups.values()].map(({ parts, ...g }) => ({ ...g, gzipBytes: gzipSync(Buffer.concat(parts), { level: 9 }).length }));
  rows.push({ name: "data segments (strings, panic locations, vtables, tables)", bytes: data, functions: 0, gzipBytes: null });
  rows.push({ name: "module structure (types, imports, exports, function table)", bytes: total - data - code, functions: 0, gzipBytes: null });
  for (const r of rows) r.share = Number((r.bytes / total).toFixed(4));
  rows.sort((x, y) => y.bytes - x.bytes);
  const forbidden = bodies.filter((b) => isForbidden(b.name)).map((b) => b.name);
  const biggest = [...bodies].sort((x, y) => y.size - x.size).slice(0, 25).map((b) => ({ name: b.name.replace(/::h[0-9a-f]{16}$/, ""), bytes: b.size }));
  const streams = bodies.filter((b) => STREAMS.test(b.name)).map((b) => b.name);
  return { bytesWithoutNames: total, nameSectionBytes: named, sections, top: rows, biggestFunctions: biggest, forbidden, streams };
}

function main() {
  const [path, out] = process.argv.slice(2);
  const buf = readFileSync(path);
  const a = attribute(buf);
  const report = { date: new Date().toISOString(), wasm: path, ...a };
  const pad = (s, n) => String(s).padStart(n);
  console.log(`${path}: ${a.bytesWithoutNames} bytes without its name section (${a.nameSectionBytes} bytes of names)`);
  console.log("\n| contributor | bytes | share | gzip -9 alone | functions |\n|---|--:|--:|--:|--:|");
  for (const r of a.top.slice(0, 15)) {
    console.log(`| ${r.name} | ${r.bytes} | ${(r.share * 100).toFixed(1)}% | ${r.gzipBytes ?? "–"} | ${r.functions || "–"} |`);
  }
  console.log("\nbiggest functions:");
  for (const f of a.biggestFunctions.slice(0, 15)) console.log(`${pad(f.bytes, 7)}  ${f.name.slice(0, 120)}`);
  if (out) writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  if (a.forbidden.length) {
    console.error(`\nsize: ${a.forbidden.length} functions of url/idna and friends are linked again, e.g.:\n  ${a.forbidden.slice(0, 5).join("\n  ")}`);
    process.exit(1);
  }
  console.log("\nno function of url, idna, form_urlencoded, percent_encoding or Unicode normalisation is linked");
  console.log(`${a.streams.length} functions of wasm-streams are linked (kept alive by the function table; docs/upstream.md)`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
