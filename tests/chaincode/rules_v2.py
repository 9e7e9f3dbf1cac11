"""Rules version 2, for the tests only: version 1 with one rule changed, so that a switch
of rules at a height shows in the results. Under version 2 a spend of less than
LEAST_SPEND cents is refused (`invalid_args`, argument `amount`, problem `range`);
everything else is version 1's.

The product ships version 1 alone; a test adds this one to a process with
chaincode.add_rules (tests/integration/v2_node.py for a validator process), or to its
own with monkeypatch on chaincode's table. Lives under tests/ only.
"""
from __future__ import annotations

from chaincode import coins, v1
from chaincode.errors import Reject

VERSION = 2
LEAST_SPEND = 5


def _spend(c, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    if args["amount"] < LEAST_SPEND:
        raise Reject("invalid_args", {"argument": "amount", "problem": "range"})
    return coins.spend(c, signer, args, member, tx_key)


KINDS = dict(v1.KINDS)
KINDS["coin.spend"] = (_spend, v1.KINDS["coin.spend"][1])


def execute_block(state, ctx, txs, state_acc):
    return v1.run(state, ctx, txs, state_acc, KINDS, VERSION)


genesis_state = v1.genesis_state
