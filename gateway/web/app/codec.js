// Canonical msgpack, as docs/protocol.md ("Canonical msgpack") and protocol/codec.py
// write it, for the value shapes the protocol uses: text (string), binary (Uint8Array),
// integers (Number or BigInt, shortest form), booleans, arrays and maps (plain objects
// with text keys, written sorted by the keys' UTF-8 bytes at every depth). No floats, no
// nil: asking for one is an error, as it is in Python.

const utf8 = new TextEncoder();

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

function head(out, small, codes, length) {
  // small: the fix-form base (or null); codes: the 8-, 16- and 32-bit length codes
  if (small !== null && length < small.limit) out.push(small.base | length);
  else if (codes[0] !== null && length < 0x100) out.push(codes[0], length);
  else if (length < 0x10000) out.push(codes[1], length >> 8, length & 0xff);
  else out.push(codes[2], (length >>> 24) & 0xff, (length >> 16) & 0xff,
                (length >> 8) & 0xff, length & 0xff);
}

function bigEndian(out, value, bytes) {
  const big = BigInt.asUintN(bytes * 8, value);
  for (let i = bytes - 1; i >= 0; i -= 1) out.push(Number((big >> BigInt(8 * i)) & 0xffn));
}

function integer(out, value) {
  const n = BigInt(value);
  if (n >= 0n) {
    if (n < 0x80n) out.push(Number(n));
    else if (n < 0x100n) { out.push(0xcc); bigEndian(out, n, 1); }
    else if (n < 0x10000n) { out.push(0xcd); bigEndian(out, n, 2); }
    else if (n < 0x100000000n) { out.push(0xce); bigEndian(out, n, 4); }
    else if (n < 0x10000000000000000n) { out.push(0xcf); bigEndian(out, n, 8); }
    else throw new RangeError("an integer beyond 64 bits");
  } else if (n >= -32n) out.push(Number(n) & 0xff);
  else if (n >= -0x80n) { out.push(0xd0); bigEndian(out, n, 1); }
  else if (n >= -0x8000n) { out.push(0xd1); bigEndian(out, n, 2); }
  else if (n >= -0x80000000n) { out.push(0xd2); bigEndian(out, n, 4); }
  else if (n >= -0x8000000000000000n) { out.push(0xd3); bigEndian(out, n, 8); }
  else throw new RangeError("an integer beyond 64 bits");
}

function write(out, value) {
  if (typeof value === "boolean") out.push(value ? 0xc3 : 0xc2);
  else if (typeof value === "bigint") integer(out, value);
  else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError("only whole numbers are written");
    integer(out, value);
  } else if (typeof value === "string") {
    const bytes = utf8.encode(value);
    head(out, {limit: 32, base: 0xa0}, [0xd9, 0xda, 0xdb], bytes.length);
    for (const b of bytes) out.push(b);
  } else if (value instanceof Uint8Array) {
    head(out, null, [0xc4, 0xc5, 0xc6], value.length);
    for (const b of value) out.push(b);
  } else if (Array.isArray(value)) {
    head(out, {limit: 16, base: 0x90}, [null, 0xdc, 0xdd], value.length);
    for (const item of value) write(out, item);
  } else if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).map((k) => [utf8.encode(k), k]);
    keys.sort((a, b) => compareBytes(a[0], b[0]));
    head(out, {limit: 16, base: 0x80}, [null, 0xde, 0xdf], keys.length);
    for (const [, key] of keys) {
      write(out, key);
      write(out, value[key]);
    }
  } else throw new TypeError(`cannot write ${value} canonically`);
}

/** The canonical msgpack bytes of `value`. */
export function pack(value) {
  const out = [];
  write(out, value);
  return Uint8Array.from(out);
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new TypeError("not lowercase hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}
