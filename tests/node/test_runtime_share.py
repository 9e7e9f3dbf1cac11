"""A signer over its share of the request pool is answered `overloaded` (send again
later), never `known`: a transaction answered known is one the node will order."""
from __future__ import annotations

import dataclasses
import socket

from node import config as node_config
from node.envelope import sign_tx
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from ops import network


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_signer_over_its_share_is_overloaded_not_known(tmp_path):
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    admin = read_key_file(tmp_path / "net" / "keys" / "admin.key")
    node = Validator(node_config.load(tmp_path / "net" / "municipality"))
    try:
        share = 3
        node.replica.config = dataclasses.replace(node.replica.config, client_pending_limit=share)
        node.replica.requests.config = node.replica.config
        envelopes = [sign_tx(admin, node.chain, "member.register",
                             {"key": Keypair.generate().public, "role": "citizen",
                              "age_band": "21plus", "area": "GMS"}) for _ in range(share + 2)]
        answers = node.submit(envelopes)
        assert [a.status for a in answers] == ["pending"] * share + ["overloaded"] * 2
        assert all(node.unexecuted(a.tx_id) == "" for a in answers[share:])
        # the same envelope again while it waits is known
        assert node.submit(envelopes[:1])[0].status == "known"
    finally:
        node.store.close()
