"""Executes blocks into the store at argv[1] until killed, printing each committed height:
the other half of test_crash.py. The envelopes are signed before the first block, so
that the loop spends its time executing and writing, where the kill should land."""
from __future__ import annotations

import sys

from ledger_kit import CHAIN, T0, certified, keypair, make_genesis
from node.envelope import sign_tx
from node.executor import open_ledger

PER_BLOCK = 200
BLOCKS = 40


def main(path: str) -> None:
    admin = keypair("admin")
    executor = open_ledger(path, make_genesis(admin))
    start = executor.store.head()[0]
    blocks = [[sign_tx(admin, CHAIN, "member.register",
                       {"key": keypair(f"m{height}.{i}").public, "role": "merchant",
                        "name": f"Shop {height}.{i}"}, nonce=height * 1000 + i)
               for i in range(PER_BLOCK)]
              for height in range(start + 1, start + BLOCKS + 1)]
    for height, envelopes in enumerate(blocks, start + 1):
        executor.execute(certified(executor, height, T0 + height, envelopes))
        print(height, flush=True)
    # the test kills the process long before it runs out of blocks


if __name__ == "__main__":
    main(sys.argv[1])
