"""Executes blocks into the store at argv[1] until killed, printing each committed height:
the other half of test_crash.py."""
from __future__ import annotations

import sys

from ledger_kit import CHAIN, T0, certified, keypair, make_genesis
from node.envelope import sign_tx
from node.executor import open_ledger

PER_BLOCK = 200


def main(path: str) -> None:
    admin = keypair("admin")
    executor = open_ledger(path, make_genesis(admin))
    height = executor.store.head()[0]
    while True:
        height += 1
        envelopes = [sign_tx(admin, CHAIN, "member.register",
                             {"key": keypair(f"m{height}.{i}").public, "role": "merchant",
                              "name": f"Shop {height}.{i}"}, nonce=height * 1000 + i)
                     for i in range(PER_BLOCK)]
        executor.execute(certified(executor.door, height, T0 + height, envelopes))
        print(height, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
