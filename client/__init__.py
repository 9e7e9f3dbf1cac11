"""The Python client of a Stadsmunt gateway, for apps and scripts (docs/client.md).

    from client import Client, ClientError
    from node.keys import read_key_file

    async with Client("http://127.0.0.1:7101", read_key_file("admin.key")) as c:
        result = await c.send("task.claim", {"task": "litter-walk"})

It speaks the protocol (protocol/: envelopes, transaction ids, read tokens, limits) over
aiohttp's HTTP client and imports nothing else of the project: not the gateway, the node
or the chaincode (tests/test_architecture.py holds it to that).
"""
from client.core import DAY_MS, UNREACHABLE, Client, ClientError, EventParser, now_ms
from protocol.envelope import Signer, tx_id_of_envelope
from protocol.limits import MAX_BATCH

__all__ = ["Client", "ClientError", "EventParser", "Signer", "DAY_MS", "MAX_BATCH",
           "UNREACHABLE", "now_ms", "tx_id_of_envelope"]
