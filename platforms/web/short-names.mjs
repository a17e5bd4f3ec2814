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
import { assemble, name, readName, readU32, sections, skipImportDescription, u32 } from "./wasm-binary.mjs";

const dir = process.argv[2];
const wasmFile = readdirSync(dir).find((f) => f.endsWith("_bg.wasm"));
const glueFile = wasmFile.replace(/_bg\.wasm$/, ".js");
const wasm = readFileSync(join(dir, wasmFile));
let glue = readFileSync(join(dir, glueFile), "utf8");

/** Short names in order: a … z, A … Z, then two letters. */
const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const shortName = (i) =>
  i < letters.length ? letters[i] : letters[Math.floor(i / letters.length) - 1] + letters[i % letters.length];

const renamedImports = new Map(); // module → (old field → new field)
const renamedExports = new Map(); // old → new
const newModules = new Map();
const renamed = sections(wasm).map(({ id, content }) => {
  if (id !== 2 && id !== 7) return { id, content };
  const [count, first] = readU32(content, 0);
  const parts = [u32(count)];
  let p = first;
  for (let i = 0; i < count; i++) {
    if (id === 2) {
      let module, field;
      [module, p] = readName(content, p);
      [field, p] = readName(content, p);
      const next = skipImportDescription(content, p);
      if (!newModules.has(module)) newModules.set(module, shortName(newModules.size));
      if (!renamedImports.has(module)) renamedImports.set(module, new Map());
      const fields = renamedImports.get(module);
      if (!fields.has(field)) fields.set(field, shortName(fields.size));
      parts.push(name(newModules.get(module)), name(fields.get(field)), content.subarray(p, next));
      p = next;
    } else {
      let old;
      [old, p] = readName(content, p);
      const next = readU32(content, p + 1)[1]; // its kind, then its index
      renamedExports.set(old, shortName(renamedExports.size));
      parts.push(name(renamedExports.get(old)), content.subarray(p, next));
      p = next;
    }
  }
  return { id, content: Buffer.concat(parts) };
});

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

writeFileSync(join(dir, wasmFile), assemble(wasm, renamed));
writeFileSync(join(dir, glueFile), glue);
const count = [...renamedImports.values()].reduce((n, fields) => n + fields.size, 0);
console.log(`short names: ${count} imports, ${renamedExports.size} exports`);
