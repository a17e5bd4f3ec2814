// Gives the wasm's imports and exports one- or two-letter names and rewrites the JS glue
// to match: wasm-bindgen names each import after its Rust item plus a 16-digit hash and
// each closure export after its whole type, ~13 KB of names that cost the first load ~6 KB
// after compression, twice (once in the wasm, once in the glue).
//
//   node platforms/web/short-names.mjs BUNDLE_DIR    (the wasm-bindgen output, in place)
//
// Refuses, changing nothing, when the glue uses a name it cannot map: a new wasm-bindgen
// that shapes its glue differently fails the build here, not in a browser.
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
const wasmFile = readdirSync(dir).find((f) => f.endsWith("_bg.wasm"));
const glueFile = wasmFile.replace(/_bg\.wasm$/, ".js");
const wasm = readFileSync(join(dir, wasmFile));
let glue = readFileSync(join(dir, glueFile), "utf8");

/** Short names in order: a … z, A … Z, then two letters. */
const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const shortName = (i) =>
  i < letters.length ? letters[i] : letters[Math.floor(i / letters.length) - 1] + letters[i % letters.length];

// The binary: LEB128 numbers, length-prefixed names, sections of (id, size, content).
const readU32 = (bytes, at) => {
  let value = 0, shift = 0, byte;
  do {
    byte = bytes[at++];
    value |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  return [value >>> 0, at];
};
const u32 = (value) => {
  const out = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return Buffer.from(out);
};
const readName = (bytes, at) => {
  const [length, start] = readU32(bytes, at);
  return [bytes.toString("utf8", start, start + length), start + length];
};
const name = (text) => Buffer.concat([u32(Buffer.byteLength(text)), Buffer.from(text)]);
/** The bytes of an import's description (after its names), so it is copied unchanged. */
const skipImportDescription = (bytes, at) => {
  const kind = bytes[at++];
  const limits = (at) => {
    const flags = bytes[at++];
    [, at] = readU32(bytes, at);
    if (flags & 1) [, at] = readU32(bytes, at);
    return at;
  };
  switch (kind) {
    case 0x00: return readU32(bytes, at)[1]; // function: its type
    case 0x01: return limits(at + 1); // table: element type, limits
    case 0x02: return limits(at); // memory
    case 0x03: return at + 2; // global: value type, mutability
    case 0x04: return readU32(bytes, at + 1)[1]; // tag
    default: throw new Error(`unknown import kind ${kind}`);
  }
};

const renamedImports = new Map(); // module → (old field → new field)
const renamedExports = new Map(); // old → new
const newModules = new Map();
const sections = [wasm.subarray(0, 8)];
let at = 8;
while (at < wasm.length) {
  const id = wasm[at];
  const [size, start] = readU32(wasm, at + 1);
  const end = start + size;
  let content = wasm.subarray(start, end);
  if (id === 2 || id === 7) {
    const [count, first] = readU32(wasm, start);
    const parts = [u32(count)];
    let p = first;
    for (let i = 0; i < count; i++) {
      if (id === 2) {
        let module, field;
        [module, p] = readName(wasm, p);
        [field, p] = readName(wasm, p);
        const next = skipImportDescription(wasm, p);
        if (!newModules.has(module)) newModules.set(module, shortName(newModules.size));
        if (!renamedImports.has(module)) renamedImports.set(module, new Map());
        const fields = renamedImports.get(module);
        if (!fields.has(field)) fields.set(field, shortName(fields.size));
        parts.push(name(newModules.get(module)), name(fields.get(field)), wasm.subarray(p, next));
        p = next;
      } else {
        let old;
        [old, p] = readName(wasm, p);
        const next = readU32(wasm, p + 1)[1]; // its kind, then its index
        renamedExports.set(old, shortName(renamedExports.size));
        parts.push(name(renamedExports.get(old)), wasm.subarray(p, next));
        p = next;
      }
    }
    content = Buffer.concat(parts);
  }
  sections.push(Buffer.from([id]), u32(content.length), content);
  at = end;
}

// The glue: `"<module>": importN` objects whose keys are the import fields, and `wasm.<export>`.
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\\/]/g, "\\$&");
for (const [module, fields] of renamedImports) {
  const objectPattern = new RegExp(`"${escape(module)}": (\\w+),`);
  const found = glue.match(objectPattern);
  if (!found) throw new Error(`the glue has no import object for module ${module}`);
  glue = glue.replace(objectPattern, `"${newModules.get(module)}": $1,`);
  for (const [old, short] of fields) {
    const key = new RegExp(`(^|[\\s{,])${escape(old)}:`, "gm");
    if (!key.test(glue)) throw new Error(`the glue does not define import ${old}`);
    glue = glue.replace(key, `$1${short}:`);
  }
}
glue = glue.replace(/\bwasm\.([A-Za-z_$][\w$]*)/g, (whole, old) => {
  if (!renamedExports.has(old)) throw new Error(`the glue uses wasm.${old}, which the wasm does not export`);
  return `wasm.${renamedExports.get(old)}`;
});

writeFileSync(join(dir, wasmFile), Buffer.concat(sections));
writeFileSync(join(dir, glueFile), glue);
const count = [...renamedImports.values()].reduce((n, fields) => n + fields.size, 0);
console.log(`short names: ${count} imports, ${renamedExports.size} exports`);
