"""The validator set changes on a live network (docs/operators.md, "A partner joins",
"A validator's key is replaced", "A partner leaves"), real processes under load:

1. a fifth validator, `cotown`, made with `node init --join` and run with `node run
   --join`, follows the chain while the stewards of three organisations enact a
   `validators.set` of five; from its `from` height it is a member, and the status of
   every gateway shows the set in force and, before, the pending one;
2. two more join in one change: seven validators;
3. the key of municipality (the primary of view 0 of every set) is replaced: its
   operator enacts a set with a new key, and after the switch starts it with that key;
4. the three newcomers leave: four again, and they follow without a vote.
Spends flow through every member's gateway the whole time. At the end every
acknowledged spend is in the chain exactly once, on every validator alike, and
`stadsmunt audit` passes over the whole log, all three switches included.
"""
from __future__ import annotations

import asyncio
import contextlib
import time

from netharness import Network, free_base_port, run_cli, tx_heights
from client import Client
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


def make_joiner(net: Network, name: str) -> Keypair:
    """A validator folder made with `node init --join`, its peers every validator made
    so far (those in force, and one that joins in the same change: whichever of two
    has the lower key dials, so each needs the other's address), its address added to
    every other folder's [peers], started with `node run --join`."""
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
    net.start(name, launcher=JOIN)
    return key


async def test_validators_join_rotate_and_leave_while_spends_flow(network):
    net: Network = await network(4)
    genesis_names = list(net.names)
    municipality, cbs, brightlands, vng = genesis_names
    steward = {name: keys.read_key_file(net.root / "keys" / f"steward-{name}.key")
               for name in genesis_names}
    genesis_keys = {name: keys.read_key_file(net.root / name / "validator.key").public
                    for name in genesis_names}
    admin, anna, shop = net.admin, Keypair.generate(), Keypair.generate()
    cotown, mijnstad, zuyd = "cotown", "mijnstad", "zuyd"
    joiner_keys = {cotown: make_joiner(net, cotown)}

    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, Client] = {}

        async def client(name: str) -> Client:
            if name not in clients:
                clients[name] = await stack.enter_async_context(
                    Client(net.gateways[name], key=admin, chain=net.chain))
            return clients[name]

        async def ok(kind: str, args: dict, signer: Keypair, via: str = municipality):
            result = await (await client(via)).send(kind, args, signer=signer, check=False)
            assert result["status"] == "committed" and result["code"] == "ok", result
            return result

        async def enact(validators: list[dict]) -> int:
            proposal = await ok("gov.propose", {"action": "validators.set",
                                                "args": {"validators": validators},
                                                "expires": now_ms() + DAY_MS},
                                steward[cbs], via=cbs)
            await ok("gov.approve", {"proposal": proposal["tx_id"]}, steward[brightlands],
                     via=brightlands)
            enacted = await ok("gov.approve", {"proposal": proposal["tx_id"]},
                               steward[vng], via=vng)
            event = enacted["events"][-1]
            assert event["kind"] == "validators.set", enacted
            assert event["from"] > enacted["height"] + MARGIN
            return event["from"]

        await ok("member.register", {"key": anna.public, "role": "citizen",
                                     "age_band": "21plus", "area": "centrum"}, admin)
        await ok("member.register", {"key": shop.public, "role": "merchant",
                                     "name": "Bakkerij"}, admin)
        await ok("task.post", {"task": "bench", "title": "Paint the bench",
                               "area": "centrum", "domain": "public-space", "reward": 900,
                               "minutes": 120, "slots": 1,
                               "deadline": now_ms() + DAY_MS}, admin)
        await ok("task.claim", {"task": "bench"}, anna)
        await ok("task.submit", {"task": "bench", "proof": b"p" * 32}, anna)
        await ok("task.approve", {"task": "bench", "citizen": anna.public}, admin)

        acknowledged: list[str] = []

        async def spend_until(height: int, gateways: list[str]) -> None:
            """One-cent spends, one after the other, through each gateway in turn, until
            a spend lands at `height` or above."""
            deadline = time.monotonic() + 120
            turn = 0
            while True:
                assert time.monotonic() < deadline, f"no block at {height} in time"
                via = gateways[turn % len(gateways)]
                turn += 1
                result = await (await client(via)).send(
                    "coin.spend", {"to": shop.public, "amount": 1}, signer=anna,
                    check=False)
                assert result["status"] == "committed", (via, result)
                assert result["code"] == "ok", result
                acknowledged.append(result["tx_id"])
                if result["height"] >= height:
                    return

        async def set_everywhere(names: list[str], members: list[str]) -> None:
            async def shown():
                found = [(await (await client(n)).status()).get("validator_set")
                         for n in names]
                return all(f is not None and f["validators"] == members
                           and f["pending"] is None for f in found)
            await net.wait_for(f"the set {members} in force everywhere", shown, 60)

        everyone = [*genesis_names, cotown, mijnstad, zuyd]

        # ---- 1. cotown joins: 4 -> 5 ------------------------------------------------------
        five = [entry(n, genesis_keys[n], n) for n in genesis_names] + \
            [entry(cotown, joiner_keys[cotown].public, brightlands)]
        first = await enact(five)
        status = await (await client(municipality)).status()
        assert status["validator_set"]["pending"] == {
            "from": first, "validators": [*genesis_names, cotown]}, status
        assert status["validator_set"]["since"] == 1
        await net.wait_for("cotown's gateway", lambda: net.status(cotown), 60)
        joining = await (await client(cotown)).status()
        assert joining["validator_set"]["member"] is False
        assert any(w.startswith("this validator is not in the validator set in force")
                   for w in joining["warnings"]), joining
        await spend_until(first + 3, genesis_names)
        await set_everywhere([*genesis_names, cotown], [*genesis_names, cotown])
        assert (await (await client(cotown)).status())["validator_set"]["member"] is True
        # cotown takes part: it accepts spends of its own and orders them with the others
        await spend_until(first + 8, [cotown, municipality, cbs])

        # ---- 2. two more join at once: 5 -> 7 ---------------------------------------------
        for name in (mijnstad, zuyd):
            joiner_keys[name] = make_joiner(net, name)
        seven = five + [entry(mijnstad, joiner_keys[mijnstad].public, municipality),
                        entry(zuyd, joiner_keys[zuyd].public, vng)]
        second = await enact(seven)
        await spend_until(second + 3, [*genesis_names, cotown])
        await set_everywhere(everyone, everyone)
        await spend_until(second + 8, [zuyd, mijnstad, cotown, cbs])

        # ---- 3. the primary's key is replaced -----------------------------------------
        new_key = Keypair.generate()
        rotated = [entry(municipality, new_key.public, municipality)] + seven[1:]
        third = await enact(rotated)
        await spend_until(third + 3, [cbs, brightlands, vng, cotown, zuyd])
        net.kill(municipality)
        (net.root / municipality / "validator.key").unlink()     # the old key destroyed
        keys.write_key_file(net.root / municipality / "validator.key", new_key)
        net.start(municipality)
        await net.wait_ready(everyone, timeout_s=60)
        await set_everywhere(everyone, everyone)
        await spend_until(third + 12, [municipality, cbs, zuyd])

        # ---- 4. the three leave: 7 -> 4 ---------------------------------------------------
        fourth = await enact(rotated[:4])
        await spend_until(fourth + 6, genesis_names)
        await set_everywhere(genesis_names, genesis_names)
        for name in (cotown, mijnstad, zuyd):
            left = await (await client(name)).status()
            assert left["validator_set"]["member"] is False
            assert "this validator is not in the validator set in force: it follows the " \
                "chain and orders nothing" in left["warnings"], left

    # ---- every acknowledged spend exactly once, everywhere alike -----------------------
    top = await net.wait_caught_up(genesis_names, timeout_s=60)
    blocks = await net.assert_same_blocks(genesis_names, top)
    heights = tx_heights(blocks)
    assert all(tx in heights for tx in acknowledged)
    assert len(set(acknowledged)) == len(acknowledged)
    net.kill(vng)       # the audit reads its ledger from disk
    audited = await asyncio.to_thread(run_cli, "audit", str(net.root / vng),
                                      "--genesis-hash", net.genesis_hash, timeout_s=120)
    assert audited.returncode == 0, audited.stdout[-3000:] + audited.stderr[-3000:]
