// Replaces the body of every function of Rust's symbol demangler (`rustc_demangle`) with a
// trap, before wasm-opt, which then drops all the code they called: ~16 KB of the wasm,
// ~5 KB of the first load after compression.
//
//   node platforms/web/drop-demangler.mjs BUNDLE_DIR    (the wasm-bindgen output, in place)
//
// Why it is dead weight: std demangles only to print the frames of a captured backtrace,
// and on wasm32-unknown-unknown std captures none (no unwinder, and the environment
// variables that turn capture on do not exist there). It stays linked because Dioxus's
// errors are `anyhow` errors, whose Debug formatting prints a backtrace through a vtable,
// where no optimiser can see that the frames are always empty. Needs the wasm's name
// section, which wasm-bindgen keeps and wasm-opt --strip-debug removes afterwards; a name
// stands for one body here, since nothing has merged functions yet. Stops the build when
// it finds no demangler: its names changed, or it is no longer linked, and this step needs
// a look.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assemble, readName, readU32, sections, skipImportDescription, u32 } from "./wasm-binary.mjs";

const dir = process.argv[2];
const wasmFile = join(dir, readdirSync(dir).find((f) => f.endsWith("_bg.wasm")));
const wasm = readFileSync(wasmFile);
const parts = sections(wasm);

/** Function index → name, from the `name` custom section's function names. */
const functionNames = () => {
  const names = new Map();
  for (const { id, content } of parts) {
    if (id !== 0 || readName(content, 0)[0] !== "name") continue;
    let at = readName(content, 0)[1];
    while (at < content.length) {
      const kind = content[at];
      const [size, start] = readU32(content, at + 1);
      if (kind === 1) {
        let [count, p] = readU32(content, start);
        for (let i = 0; i < count; i++) {
          let index, text;
          [index, p] = readU32(content, p);
          [text, p] = readName(content, p);
          names.set(index, text);
        }
      }
      at = start + size;
    }
  }
  return names;
};

/** Imported functions come first in the function index space. */
const importedFunctions = () => {
  const imports = parts.find(({ id }) => id === 2);
  if (!imports) return 0;
  let [count, p] = readU32(imports.content, 0);
  let functions = 0;
  for (let i = 0; i < count; i++) {
    p = readName(imports.content, readName(imports.content, p)[1])[1];
    if (imports.content[p] === 0x00) functions++;
    p = skipImportDescription(imports.content, p);
  }
  return functions;
};

const names = functionNames();
if (names.size === 0) throw new Error(`${wasmFile} has no function names: run this before wasm-opt`);
const offset = importedFunctions();
const isDemangler = (text) => /^<*&?rustc_demangle\[/.test(text);
// No locals, `unreachable`, `end`: valid whatever the function's type.
const trap = Buffer.from([0x00, 0x00, 0x0b]);
let dropped = 0;
const rewritten = parts.map(({ id, content }) => {
  if (id !== 10) return { id, content };
  let [count, p] = readU32(content, 0);
  const bodies = [u32(count)];
  for (let i = 0; i < count; i++) {
    const [size, start] = readU32(content, p);
    const body = isDemangler(names.get(offset + i) ?? "") ? trap : content.subarray(start, start + size);
    if (body === trap) dropped++;
    bodies.push(u32(body.length), body);
    p = start + size;
  }
  return { id, content: Buffer.concat(bodies) };
});
if (dropped === 0) throw new Error(`${wasmFile} has no function named rustc_demangle[…]`);
writeFileSync(wasmFile, assemble(wasm, rewritten));
console.log(`demangler dropped: ${dropped} functions`);
