"""A validator process that misbehaves towards its partners, for the Byzantine-partner
tests (test_byzantine_partner.py):

    python -m tests.integration.byzantine_node MODE DIR/NAME

patches the validator's own classes for MODE, then runs exactly what `python -m ops.cli
node run DIR/NAME` runs. It signs only with its own key, as a real partner gone bad
would. The modes, each an attack a partner once made work against real processes:

- `fetch_flood`: every 10 ms, 500 catch-up requests for 64 blocks to every peer.
- `bad_votes`: every prepare and commit it sends goes after 200 copies whose signature
  is wrong (well-formed bytes).
- `equivocate`: as primary, every pre-prepare goes to half its peers with one batch and
  to the other half with another, both signed; the first peer gets both.
- `junk_forward`: every 10 ms, a forward of 100 transactions signed by fresh keys that
  are not members, to every peer.
- `lying_catch_up`: every block it serves in a catch-up answer carries another block time
  than the one its certificate signs.
- `bad_frames`: every 10 ms, a frame that does not parse, to every peer.
- `second_genesis`: answers catch-up requests with the blocks of another network made
  with the same validator keys and chain id under another genesis (an operator who
  regenerated a genesis with the partners' keys), read from the validator data folder
  named by STADSMUNT_SECOND_GENESIS.

Lives under tests/ only: production code has no hooks for it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import sys

from consensus.digest import batch_digest, preprepare_bytes
from consensus.messages import Commit, Forward, PrePrepare, Prepare
from node import peering
from node.envelope import sign_tx
from node.keys import Keypair
from node.runtime import Validator
from node.store import Store
from ops import cli

EVERY_S = 0.01


def _every(action) -> None:
    """Runs `action(validator)` every EVERY_S once the validator has started."""
    start = Validator.start

    async def started(self):
        await start(self)

        async def loop():
            while True:
                await asyncio.sleep(EVERY_S)
                action(self)
        self._byzantine_task = asyncio.create_task(loop())
    Validator.start = started


def _peers(node: Validator) -> list[int]:
    """The other members' places in the validator set in force (Validator.send's `to`)."""
    return [i for i in range(len(node.consensus_config.validators)) if i != node.replica.me]


def _links(node: Validator) -> list[int]:
    """The other members' peers on the transport (Transport.send's `peer`)."""
    own = node.keypair.public
    return [node.transport.index_of(k) for k in node.consensus_config.validators if k != own]


def fetch_flood() -> None:
    def flood(node: Validator) -> None:
        for peer in _links(node):
            for _ in range(500):
                node.transport.send(peer, peering.fetch_frame(1, 64))
    _every(flood)


def bad_votes() -> None:
    send = Validator.send

    def sending(self, to, message) -> None:
        if type(message) in (Prepare, Commit):
            for _ in range(200):
                send(self, to, dataclasses.replace(message, signature=os.urandom(64)))
        send(self, to, message)
    Validator.send = sending


def equivocate() -> None:
    send = Validator.send

    def sending(self, to, message) -> None:
        if type(message) is not PrePrepare or to is not None or len(message.payloads) < 2:
            send(self, to, message)
            return
        domain = self.consensus_config.domain
        payloads = message.payloads[:-1]
        digest = batch_digest(domain, message.height, message.time_ms,
                              [hashlib.sha256(p).digest() for p in payloads])
        other = PrePrepare(message.view, message.height, message.time_ms, digest, payloads,
                           self.keypair.sign(preprepare_bytes(domain, message.view,
                                                              message.height, digest)))
        peers = _peers(self)
        for peer in peers:
            send(self, peer, message if peer % 2 else other)
        # and the first peer gets the other one too: it holds both signed proposals
        send(self, peers[0], other if peers[0] % 2 else message)
    Validator.send = sending


def junk_forward() -> None:
    def forward(node: Validator) -> None:
        junk = tuple(sign_tx(Keypair.generate(), node.chain, "task.claim", {"task": "x"})
                     for _ in range(100))
        node.send(None, Forward(junk))
    _every(forward)


def lying_catch_up() -> None:
    blocks = Validator._serve_fetch

    def serve(self, peer: int, from_height: int, to_height: int) -> None:
        send = self.transport.send

        def lying(to: int, frame: bytes) -> None:
            kind, records = peering.parse(frame, 1 << 30)
            if kind == peering.BLOCKS:
                frame = peering.blocks_frame([
                    dataclasses.replace(r, time_ms=r.time_ms + 1).encode() for r in records])
            send(to, frame)
        self.transport.send = lying
        try:
            blocks(self, peer, from_height, to_height)
        finally:
            del self.transport.send
    Validator._serve_fetch = serve


def bad_frames() -> None:
    def garbage(node: Validator) -> None:
        for peer in _links(node):
            node.transport.send(peer, bytes([peering.CONSENSUS]) + b"\xc1 not msgpack")
    _every(garbage)


def second_genesis() -> None:
    store = Store(os.environ["STADSMUNT_SECOND_GENESIS"])
    held = store.raw_blocks(1, 1 << 20, 1 << 30)
    store.close()
    assert held, "the second network has no blocks"

    def blocks(from_height: int) -> bytes:
        return peering.blocks_frame(held[max(from_height, 1) - 1:][:64])

    def serve(self, peer: int, from_height: int, to_height: int) -> None:
        if from_height <= len(held):
            self.transport.send(peer, blocks(from_height))
    Validator._serve_fetch = serve


MODES = {f.__name__: f for f in (fetch_flood, bad_votes, equivocate, junk_forward,
                                 lying_catch_up, bad_frames, second_genesis)}

if __name__ == "__main__":
    mode, folder = sys.argv[1], sys.argv[2]
    MODES[mode]()
    sys.exit(cli.main(["node", "run", folder]))
