"""Requests a peer forwards pass this validator's admission as a gateway's do: envelopes
of keys that are not active members never reach its request pool, however many a
faulty peer sends."""
from __future__ import annotations

import socket

from consensus.messages import Forward
from node import config as node_config, peering
from node.envelope import sign_tx
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from ops import network


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_forward_of_junk_from_strangers_leaves_only_members_requests(tmp_path):
    network.init(tmp_path / "net", validators=4, base_port=_free_port())
    admin = read_key_file(tmp_path / "net" / "keys" / "admin.key")
    node = Validator(node_config.load(tmp_path / "net" / "cbs"))
    try:
        def register(signer) -> bytes:
            return sign_tx(signer, node.chain, "member.register", {
                "key": Keypair.generate().public, "role": "citizen", "age_band": "21plus",
                "area": "GMS"})
        junk = [register(Keypair.generate()) for _ in range(50)]
        good = register(admin)
        node._on_frame(0, peering.consensus_frame(Forward(tuple(junk[:25] + [good] +
                                                                junk[25:]))))
        assert node.replica.pending_count == 1
        assert [r.payload for r in node.replica.requests.waiting()] == [good]
        node._on_frame(0, peering.consensus_frame(Forward(tuple(junk))))
        assert node.replica.pending_count == 1
    finally:
        node.store.close()
