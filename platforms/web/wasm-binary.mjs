// Reading and writing the parts of a wasm binary that the bundle's post-processing steps
// (short-names.mjs, drop-demangler.mjs) change: LEB128 numbers, length-prefixed names and
// sections of (id, size, content). Nothing else of the format is needed.

/** The unsigned LEB128 number at `at`, and where the next field starts. */
export const readU32 = (bytes, at) => {
  let value = 0, shift = 0, byte;
  do {
    byte = bytes[at++];
    value |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  return [value >>> 0, at];
};

/** `value` as unsigned LEB128. */
export const u32 = (value) => {
  const out = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return Buffer.from(out);
};

/** The length-prefixed UTF-8 name at `at`, and where the next field starts. */
export const readName = (bytes, at) => {
  const [length, start] = readU32(bytes, at);
  return [bytes.toString("utf8", start, start + length), start + length];
};

/** `text` as a length-prefixed name. */
export const name = (text) => Buffer.concat([u32(Buffer.byteLength(text)), Buffer.from(text)]);

/** Where an import's description (after its two names) ends: it is copied unchanged. */
export const skipImportDescription = (bytes, at) => {
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

/** The module's sections in order, each as its id and its content (a view into `wasm`). */
export const sections = (wasm) => {
  const found = [];
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, start] = readU32(wasm, at + 1);
    found.push({ id, content: wasm.subarray(start, start + size) });
    at = start + size;
  }
  return found;
};

/** A module with `wasm`'s header and the given sections. */
export const assemble = (wasm, parts) =>
  Buffer.concat([
    wasm.subarray(0, 8),
    ...parts.flatMap(({ id, content }) => [Buffer.from([id]), u32(content.length), content]),
  ]);
