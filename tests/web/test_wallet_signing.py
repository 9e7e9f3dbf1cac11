"""The wallet signs in the browser exactly as the Python client does: for the same key and
body, the canonical body bytes, the Ed25519 signature, the envelope, the transaction id and
the read token made by the wallet's modules (gateway/web/app/codec.js and keys.js, run in
headless Chromium with WebCrypto's Ed25519) are byte-identical to those of client/ and
protocol/, over docs/protocol.md's test vectors and over values at every boundary of
msgpack's shortest forms and of key order. The modules are served by a small server of
the test's own with the gateway's own handlers (gateway/pages.py): no network needed."""
from __future__ import annotations

import hashlib

from aiohttp import web

from client import Client
from gateway import pages
from gateway.appkeys import APP_PAGES
from node.keys import Keypair
from protocol import codec
from protocol.envelope import make_body
from tests.integration.netharness import free_base_port

SEED = bytes(range(32))
# a JS value from JSON: {"$bin": hex} is bytes, {"$int": decimal} an integer as BigInt
DECODE = """(value) => {
  const walk = (v) => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      if ("$bin" in v) return Uint8Array.from(v.$bin.match(/../g) || [], (h) => parseInt(h, 16));
      if ("$int" in v) return BigInt(v.$int);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value);
}"""


def tagged(value):
    """A value as JSON the page decodes with DECODE."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2 ** 53 - 1 else {"$int": str(value)}
    if isinstance(value, dict):
        return {k: tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tagged(v) for v in value]
    return value


INTEGERS = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
            2 ** 53, 2 ** 63, 2 ** 64 - 1, -1, -32, -33, -128, -129, -32_768, -32_769,
            -2 ** 31, -2 ** 31 - 1, -2 ** 63]
TEXTS = ["", "a" * 31, "a" * 32, "é" * 127, "ü" * 128, "x" * 255, "x" * 256, "y" * 65_536,
         "Koffie ☕ en een 🥐"]
BODIES = [
    ("coin.spend", {"amount": 250, "to": b"\x11" * 32}, 1),      # docs/protocol.md's vector
    ("coin.spend", {"amount": 250, "memo": "Koffie", "to": b"\x0d" * 32}, 2 ** 64 - 1),
    ("task.submit", {"task": "litter-2025-06", "proof": bytes(range(32))}, 0),
    ("ints", {f"i{n:03d}": v for n, v in enumerate(INTEGERS)}, 2 ** 32),
    ("texts", {"t": TEXTS, "b": [b"", b"\x00" * 255, b"\x01" * 256, b"\x02" * 65_536]}, 7),
    # key order by UTF-8 bytes at every depth, maps and arrays around 15/16 entries
    ("order", {"z": 1, "a": {"é": True, "e": False, "Z": [1, {"b": 2, "a": 3}]},
               "ä": 0, "B": "", "aa": 1, "a0": 2,
               "m15": {chr(97 + i): i for i in range(15)},
               "m16": {chr(97 + i): i for i in range(16)},
               "l15": list(range(15)), "l16": list(range(16)), "l65536": [0] * 65_536}, 3),
]


async def blank(_request) -> web.Response:
    return web.Response(text="<!doctype html><title>t</title>", content_type="text/html")


async def serve_modules(port: int) -> web.AppRunner:
    app = web.Application()
    app[APP_PAGES] = pages.app_files()
    app.router.add_get("/", blank)
    app.router.add_get("/app/{name:.+}", pages.get_wallet_file)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_the_browser_signs_and_makes_tokens_byte_for_byte_as_the_python_client(browser):
    port = free_base_port(1)
    runner = await serve_modules(port)
    try:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        key = Keypair.from_seed(SEED)
        assert key.public.hex() == \
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        python = Client("http://127.0.0.1:1", key, chain="heerlen")
        cases = []
        for kind, args, nonce in BODIES:
            envelope = await python.sign(kind, args, nonce=nonce)
            body = make_body("heerlen", kind, key.public, nonce, args)
            cases.append({"kind": kind, "args": tagged(args), "nonce": {"$int": str(nonce)},
                          "body": body.hex(), "envelope": envelope.hex()})
        made = await page.evaluate(f"""async (cases) => {{
            const decode = {DECODE};
            const codec = await import("/app/codec.js");
            const keys = await import("/app/keys.js");
            const key = await keys.fromSeed(decode({{$bin: "{SEED.hex()}"}}));
            const out = {{public: codec.hex(key.public), cases: [], tokens: []}};
            for (const c of cases) {{
              const body = keys.makeBody("heerlen", c.kind, key.public, decode(c.nonce),
                                         decode(c.args));
              const sealed = await keys.seal(key, body);
              out.cases.push({{body: codec.hex(body), envelope: codec.hex(sealed.envelope),
                               txId: sealed.txId}});
            }}
            for (const ms of [1740000000000, 0, 9999999999999999n]) {{
              out.tokens.push(await keys.token(key, "heerlen", ms));
            }}
            const fresh = await keys.generate();
            out.fresh = [codec.hex(fresh.seed), codec.hex(fresh.public),
                         codec.hex(await fresh.sign(new TextEncoder().encode("hallo")))];
            return out;
        }}""", cases)
        assert made["public"] == key.public.hex()
        for case, browser_made in zip(cases, made["cases"]):
            assert browser_made["body"] == case["body"], case["kind"]
            assert browser_made["envelope"] == case["envelope"], case["kind"]
            body = bytes.fromhex(case["body"])
            assert browser_made["txId"] == hashlib.sha256(body).hexdigest()
            assert codec.pack(codec.unpack(body, 1 << 20)) == body   # canonical, strict
        # docs/protocol.md's vectors, made in the browser
        assert made["cases"][0]["body"].startswith("86a46172677382a6616d6f756e74ccfa")
        assert made["cases"][0]["envelope"].endswith(
            "70c21fd7f8ef1c893880b0990279555f84e6187dd7623f9197317329c8f33ca8"
            "14964ae4e60397b010b761c948ed1b4c62b60711272d1196f17b88d62c52e901")
        assert made["cases"][0]["txId"] == \
            "c6611b27a618867d4ea93bebeb7c0e3d633ab65fe7cb158995fa580c068a9d3b"
        for ms, browser_token in zip([1740000000000, 0, 9999999999999999], made["tokens"]):
            assert browser_token == await python.token(ms=ms)
        assert made["tokens"][0].endswith(
            ".1740000000000.bb3f28839b033245d73aa7e5eea1f7e1fbba7102175d888300979a032c9583ac"
            "b85187bd38255a53a8e127d54f9142466002f2ee86d2f44f72c2cebade347c04")
        # a key made in the browser is an ordinary Ed25519 key: its seed gives its public
        # key and the same signatures in Python
        seed, public, signature = (bytes.fromhex(x) for x in made["fresh"])
        fresh = Keypair.from_seed(seed)
        assert fresh.public == public and fresh.sign(b"hallo") == signature
        await python.close()
    finally:
        await runner.cleanup()
