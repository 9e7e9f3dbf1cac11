"""The JavaScript guide in docs/client.md is true to the byte: its worked example's
inputs, read from the guide's code, give through the Python client exactly the body,
signature, transaction id and read token the guide prints. When STADSMUNT_NODE_MODULES
names a folder holding @msgpack/msgpack and tweetnacl (and node is installed), the
guide's code itself is run and must print the same; the test never needs the network."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from client import Client, tx_id_of_envelope
from protocol import codec
from node.envelope import open_envelope
from node.keys import Keypair

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.S)


def worked_example() -> str:
    return next(b for b in blocks("js") if "the worked example" in b)


def printed() -> dict[str, str]:
    text = next(b for b in blocks("text") if b.startswith("public key "))
    labels = ("public key", "body", "signature", "tx id", "token")
    found = {}
    for line in text.strip().splitlines():
        label = next(l for l in labels if line.startswith(l + " "))
        found[label] = line[len(label):].strip()
    assert set(found) == set(labels)
    return found


def inputs() -> dict:
    code = worked_example()
    seed = re.search(r'fromHex\(\s*"([0-9a-f]{64})"\)', code).group(1)
    call = re.search(r'signTx\(keys, "([a-z0-9-]+)", "([a-z.]+)", \{ task: "([^"]+)" \},'
                     r'\s*(\d+)\)', code)
    ms = re.search(r'readToken\(keys, "[a-z0-9-]+", (\d+)\)', code).group(1)
    return {"seed": bytes.fromhex(seed), "chain": call.group(1), "kind": call.group(2),
            "args": {"task": call.group(3)}, "nonce": int(call.group(4)), "ms": int(ms)}


async def test_the_guides_worked_example_matches_the_python_client_byte_for_byte():
    given, expected = inputs(), printed()
    keys = Keypair.from_seed(given["seed"])
    client = Client("http://127.0.0.1:1", keys, chain=given["chain"])
    envelope = await client.sign(given["kind"], given["args"], nonce=given["nonce"])
    body, signature = codec.unpack(envelope)
    assert keys.public.hex() == expected["public key"]
    assert body.hex() == expected["body"]
    assert signature.hex() == expected["signature"]
    assert tx_id_of_envelope(envelope) == expected["tx id"]
    assert await client.token(ms=given["ms"]) == expected["token"]
    # and what the guide builds is what the door takes
    assert open_envelope(envelope, given["chain"]).tx.tx_id == expected["tx id"]


def test_the_guides_javascript_prints_what_the_guide_says(tmp_path):
    modules = os.environ.get("STADSMUNT_NODE_MODULES")
    if not modules or shutil.which("node") is None:
        pytest.skip("set STADSMUNT_NODE_MODULES to a node_modules folder with "
                    "@msgpack/msgpack and tweetnacl to run the guide's JavaScript")
    (tmp_path / "node_modules").symlink_to(Path(modules).resolve())
    script = tmp_path / "guide.mjs"
    script.write_text(worked_example())
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shown = next(b for b in blocks("text") if b.startswith("public key "))
    assert done.stdout.split() == shown.split()
