"""Helpers for the tests that change the validator set of a live network, or add a
validator to it (test_validator_sets.py, test_state_sync.py): a joiner's folder made as an
operator makes it, and the stewards' and admin's transactions through the gateways."""
from __future__ import annotations

import contextlib
import time

from netharness import Network, free_base_port, run_cli
from client import Client, ClientError
from client.core import now_ms
from node import keys
from node.keys import Keypair

DAY_MS = 86_400_000
MARGIN = 64                 # `network init`: checkpoint interval 16, window 64
JOIN = ["-m", "ops.cli", "node", "run", "--join"]


def add_peer_address(net: Network, name: str, other: str, address: str) -> None:
    """What each operator does before a set with a new validator takes over: its
    address under [peers] in node.toml."""
    path = net.root / name / "node.toml"
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("[peers]"))
    lines.insert(at + 1, f"{other} = \"{address}\"\n")
    path.write_text("".join(lines))


def entry(name: str, key: bytes, organisation: str) -> dict:
    return {"name": name, "key": key, "organisation": organisation}


def make_joiner(net: Network, name: str, launcher: list[str] | None = JOIN) -> Keypair:
    """A validator folder made with `node init --join`, its peers every validator made
    so far (those in force, and one that joins in the same change: whichever of two
    has the lower key dials, so each needs the other's address), its address added to
    every other folder's [peers], started with `node run --join` (or `launcher`; None:
    not started)."""
    followed = list(net.peer_ports)
    key = Keypair.generate()
    key_file = net.root / f"{name}.key"
    keys.write_key_file(key_file, key)
    base = free_base_port(2)
    peers = ",".join(f"{n}=127.0.0.1:{net.peer_ports[n]}" for n in followed)
    made = run_cli("node", "init", str(net.root / name), "--name", name, "--join",
                   "--genesis", str(net.root / followed[0] / "genesis.json"),
                   "--key", str(key_file), "--peers", peers,
                   "--listen", f"127.0.0.1:{base}", "--gateway", f"127.0.0.1:{base + 1}")
    assert made.returncode == 0, made.stderr
    for other in [*net.peer_ports]:
        add_peer_address(net, other, name, f"127.0.0.1:{base}")
    net.peer_ports[name] = base
    net.gateways[name] = f"http://127.0.0.1:{base + 1}"
    if launcher is not None:
        net.start(name, launcher=launcher)
    return key


class Partners:
    """The admin's and the stewards' transactions on a network made by `network init`,
    through any validator's gateway (one Client each, closed with `stack`). The
    stewards of the second, third and fourth genesis organisations enact a
    `validators.set`; `acknowledged` holds every spend a gateway answered committed."""

    def __init__(self, net: Network, stack: contextlib.AsyncExitStack):
        self.net, self.stack = net, stack
        self.genesis_names = list(net.names)
        self.steward = {name: keys.read_key_file(net.root / "keys" / f"steward-{name}.key")
                        for name in self.genesis_names}
        self.genesis_keys = {
            name: keys.read_key_file(net.root / name / "validator.key").public
            for name in self.genesis_names}
        self.clients: dict[str, Client] = {}
        self.acknowledged: list[str] = []

    async def client(self, name: str) -> Client:
        if name not in self.clients:
            self.clients[name] = await self.stack.enter_async_context(
                Client(self.net.gateways[name], key=self.net.admin, chain=self.net.chain))
        return self.clients[name]

    async def ok(self, kind: str, args: dict, signer: Keypair, via: str | None = None):
        via = self.genesis_names[0] if via is None else via
        result = await (await self.client(via)).send(kind, args, signer=signer,
                                                      check=False)
        assert result["status"] == "committed" and result["code"] == "ok", result
        return result

    async def enact(self, validators: list[dict]) -> int:
        """Proposed and approved by three organisations' stewards; the `from` height."""
        _, cbs, brightlands, vng = self.genesis_names[:4]
        steward = self.steward
        proposal = await self.ok("gov.propose", {"action": "validators.set",
                                                 "args": {"validators": validators},
                                                 "expires": now_ms() + DAY_MS},
                                 steward[cbs], via=cbs)
        await self.ok("gov.approve", {"proposal": proposal["tx_id"]}, steward[brightlands],
                      via=brightlands)
        enacted = await self.ok("gov.approve", {"proposal": proposal["tx_id"]},
                                steward[vng], via=vng)
        event = enacted["events"][-1]
        assert event["kind"] == "validators.set", enacted
        assert event["from"] > enacted["height"] + MARGIN
        return event["from"]

    async def fund(self, citizen: Keypair, shop: Keypair) -> None:
        """A citizen with 900 cents (a task's reward) and a merchant to spend them at."""
        admin = self.net.admin
        await self.ok("member.register", {"key": citizen.public, "role": "citizen",
                                          "age_band": "21plus", "area": "centrum"}, admin)
        await self.ok("member.register", {"key": shop.public, "role": "merchant",
                                          "name": "Bakkerij"}, admin)
        await self.ok("task.post", {"task": "bench", "title": "Paint the bench",
                                    "area": "centrum", "domain": "public-space",
                                    "reward": 900, "minutes": 120, "slots": 1,
                                    "deadline": now_ms() + DAY_MS}, admin)
        await self.ok("task.claim", {"task": "bench"}, citizen)
        await self.ok("task.submit", {"task": "bench", "proof": b"p" * 32}, citizen)
        await self.ok("task.approve", {"task": "bench", "citizen": citizen.public}, admin)

    async def spend_until(self, height: int, gateways: list[str], citizen: Keypair,
                          shop: Keypair) -> None:
        """One-cent spends, one after the other, through each gateway in turn, until
        a spend lands at `height` or above."""
        deadline = time.monotonic() + 120
        turn = 0
        while True:
            assert time.monotonic() < deadline, f"no block at {height} in time"
            via = gateways[turn % len(gateways)]
            turn += 1
            result = await (await self.client(via)).send(
                "coin.spend", {"to": shop.public, "amount": 1}, signer=citizen,
                check=False)
            assert result["status"] == "committed", (via, result)
            assert result["code"] == "ok", result
            self.acknowledged.append(result["tx_id"])
            if result["height"] >= height:
                return

    async def set_everywhere(self, names: list[str], members: list[str]) -> None:
        async def shown():
            try:
                found = [(await (await self.client(n)).status()).get("validator_set")
                         for n in names]
            except ClientError:     # a gateway just started may not listen yet
                return False
            return all(f is not None and f["validators"] == members
                       and f["pending"] is None for f in found)
        await self.net.wait_for(f"the set {members} in force everywhere", shown, 60)
