"""A validator restarted on its folder remembers what it executed: the requests it
ordered are not taken into its pool again, and the chain's clock is where it was."""
from __future__ import annotations

import socket

from node import config as node_config
from node.envelope import Door, sign_tx
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from ops import network


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_restarted_validator_does_not_pool_what_it_executed(tmp_path):
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    folder = tmp_path / "net" / "municipality"
    admin = read_key_file(tmp_path / "net" / "keys" / "admin.key")
    node = Validator(node_config.load(folder))
    await node.start()
    envelope = sign_tx(admin, node.chain, "member.register",
                       {"key": Keypair.generate().public, "role": "citizen",
                        "age_band": "21plus", "area": "GMS"})
    [answer] = node.submit([envelope])
    result = await node.wait(answer.tx_id, 20)
    assert result is not None and result["code"] == "ok"
    block_time = node.store.block_time()
    await node.stop()

    again = Validator(node_config.load(folder))
    try:
        assert again.replica.block_time_ms == block_time > 0
        request = Door(again.chain).inspect([envelope])[0]
        assert again.replica.submit([request]) == [False]
        assert again.replica.pending_count == 0
    finally:
        again.store.close()
