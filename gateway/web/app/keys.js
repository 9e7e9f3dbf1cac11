// An Ed25519 key in the browser (WebCrypto) and what it signs: envelopes and read
// tokens, byte for byte as docs/protocol.md says and as the Python client (client/,
// protocol/envelope.py, protocol/token.py) makes them. The key never leaves the browser:
// its 32-byte seed is kept in this origin's localStorage and on the recovery sheet.
import {concat, fromHex, hex, pack} from "./codec.js";

const utf8 = new TextEncoder();
const ED25519 = {name: "Ed25519"};
// PKCS #8 of an Ed25519 private key (RFC 8410) is this prefix and the 32-byte seed
const PKCS8_PREFIX = fromHex("302e020100300506032b657004220420");
export const TX_TAG = utf8.encode("stadsmunt/tx/v1");
export const READ_TAG = utf8.encode("stadsmunt/read/v1");

function base64url(text) {
  const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** A signing key: {public (32 bytes), seed (32 bytes), sign(bytes) -> 64 bytes}. */
export async function fromSeed(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError("a seed is 32 bytes");
  const key = await crypto.subtle.importKey("pkcs8", concat(PKCS8_PREFIX, seed), ED25519,
                                            true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const publicKey = base64url(jwk.x);
  return {
    public: publicKey, seed,
    async sign(message) {
      return new Uint8Array(await crypto.subtle.sign(ED25519, key, message));
    },
  };
}

export async function generate() {
  const pair = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  return fromSeed(pkcs8.slice(pkcs8.length - 32));
}

export function randomNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return BigInt(`0x${hex(bytes)}`);
}

/** The canonical body of a transaction (protocol.envelope.make_body). */
export function makeBody(chain, kind, signer, nonce, args) {
  return pack({v: 1, chain, kind, signer, nonce: BigInt(nonce), args});
}

/** The envelope [bin body, bin signature] (protocol.envelope.seal) and its tx id. */
export async function seal(key, body) {
  const signature = await key.sign(concat(TX_TAG, body));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return {envelope: pack([body, signature]), txId: hex(digest), signature};
}

export async function sign(key, chain, kind, args, nonce = randomNonce()) {
  return seal(key, makeBody(chain, kind, key.public, nonce, args));
}

/** A read token KEYHEX.MS.SIGHEX (protocol.token.make_token). */
export async function token(key, chain, ms = Date.now()) {
  const msText = String(ms);
  const signature = await key.sign(concat(READ_TAG, utf8.encode(chain), utf8.encode("|"),
                                          utf8.encode(msText)));
  return `${hex(key.public)}.${msText}.${hex(signature)}`;
}

/** The SHA-256 of a file (a photo), read in the browser; the file is sent nowhere. */
export async function fileDigest(file) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
}
