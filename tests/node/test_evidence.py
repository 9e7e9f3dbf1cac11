"""Evidence of a partner's faults in a validator (node/evidence.py): kept in the data
folder with the signed messages that show them, counted in the status by name, listed
by `stadsmunt node evidence`, and the partner's link dropped."""
from __future__ import annotations

import hashlib
import json
import socket
import time

from consensus import wire
from consensus.digest import batch_digest, preprepare_bytes
from consensus.faults import EQUIVOCATION
from consensus.messages import PrePrepare
from node import config as node_config, evidence, peering
from node.envelope import sign_tx
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from ops import network
from tests.integration.netharness import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_equivocating_primary_is_kept_as_evidence_counted_and_listed(tmp_path):
    folder = tmp_path / "net"
    network.init(folder, validators=4, base_port=_free_port())
    admin = read_key_file(folder / "keys" / "admin.key")
    primary = read_key_file(folder / "municipality" / "validator.key")
    node = Validator(node_config.load(folder / "cbs"))
    try:
        now = time.time_ns() // 1_000_000
        node.driver.tick(now)
        domain = node.consensus_config.domain

        def proposal() -> PrePrepare:
            payloads = (sign_tx(admin, node.chain, "member.register", {
                "key": Keypair.generate().public, "role": "citizen", "age_band": "21plus",
                "area": "GMS"}),)
            digest = batch_digest(domain, 1, now, [hashlib.sha256(p).digest()
                                                   for p in payloads])
            return PrePrepare(0, 1, now, digest, payloads,
                              primary.sign(preprepare_bytes(domain, 0, 1, digest)))
        first, second = proposal(), proposal()
        for pp in (first, second):
            node._on_frame(0, peering.consensus_frame(pp))
        assert node.status()["faults"] == {"municipality": {EQUIVOCATION: 1}}
        # and its link is dropped and refused for a while
        assert node.transport.counters.links_shunned == 1
        (kept,) = evidence.read(node.config.data_dir)
        assert (kept["validator"], kept["kind"]) == ("municipality", EQUIVOCATION)
        decoded = [wire.decode(bytes.fromhex(m), 1 << 24) for m in kept["messages"]]
        assert decoded == [first, second]
    finally:
        node.store.close()
    listed = run_cli("node", "evidence", str(folder / "cbs"))
    assert listed.returncode == 0, listed.stderr
    assert "municipality" in listed.stdout and "equivocation" in listed.stdout
    assert listed.stdout.count("PrePrepare view 0 height 1") == 2
    as_json = run_cli("node", "evidence", str(folder / "cbs"), "--json")
    assert [json.loads(line)["kind"] for line in as_json.stdout.splitlines()] == [EQUIVOCATION]
    quiet = run_cli("node", "evidence", str(folder / "vng"))
    assert quiet.returncode == 0 and "No evidence" in quiet.stdout
