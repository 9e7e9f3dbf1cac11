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

from joining import Partners, entry, make_joiner
from netharness import Network, run_cli, tx_heights
from node import keys
from node.keys import Keypair


async def test_validators_join_rotate_and_leave_while_spends_flow(network):
    net: Network = await network(4)
    genesis_names = list(net.names)
    municipality, cbs, brightlands, vng = genesis_names
    genesis_keys = {name: keys.read_key_file(net.root / name / "validator.key").public
                    for name in genesis_names}
    anna, shop = Keypair.generate(), Keypair.generate()
    cotown, mijnstad, zuyd = "cotown", "mijnstad", "zuyd"
    joiner_keys = {cotown: make_joiner(net, cotown)}

    async with contextlib.AsyncExitStack() as stack:
        partners = Partners(net, stack)
        client, enact = partners.client, partners.enact

        await partners.fund(anna, shop)

        acknowledged = partners.acknowledged

        async def spend_until(height: int, gateways: list[str]) -> None:
            await partners.spend_until(height, gateways, anna, shop)

        set_everywhere = partners.set_everywhere

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
