"""What `stadsmunt client` tells staff: help with an example for every command, a read of
member data without a key, an empty STADSMUNT_KEY, a key registered twice, merchants by
name in the payouts, tasks in the order people read ids, and times in Europe/Amsterdam.
Against a real one-validator network where the chain is needed."""
from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from chaincode import state as st, queries
from chaincode.queries import InMemoryState
from clientkit import in_process
from client import Client
from node.keys import Keypair

DAY_MS = 24 * 3600 * 1000
CLOSED = "http://127.0.0.1:9"           # nothing listens: any request would be `unreachable`


@pytest.fixture
def client(net, capsys):
    """`client(*args)`: `stadsmunt client --gateway URL --key ADMIN *args`, in process."""
    def run(*args: str):
        return in_process(capsys, "client", "--gateway", net.url, "--key",
                          str(net.admin_file), *args)
    return run


def short(key: str) -> str:
    return f"{key[:8]}...{key[-4:]}"


def hexkey() -> str:
    return Keypair.generate().public.hex()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


# (--help of every client command: tests/client/test_command_help.py)


# ---- keys -----------------------------------------------------------------------------

@pytest.mark.parametrize("command", [("members",), ("account", "a" * 64), ("account", "me"),
                                     ("statement", "a" * 64, "--year", "2026"),
                                     ("payouts",)])
def test_a_read_of_member_data_without_a_key_says_to_give_one_before_any_request(
        capsys, monkeypatch, command):
    monkeypatch.delenv("STADSMUNT_KEY", raising=False)
    done = in_process(capsys, "client", "--gateway", CLOSED, *command)
    assert done.returncode == 2
    assert "needs a read token" not in done.stderr and "unreachable" not in done.stderr
    assert f"`client {command[0]}` reads member data: give --key FILE" in done.stderr
    assert "STADSMUNT_KEY" in done.stderr and "staff key" in done.stderr


def test_an_empty_stadsmunt_key_is_no_key(net, capsys, monkeypatch):
    monkeypatch.setenv("STADSMUNT_KEY", "")
    status = in_process(capsys, "client", "--gateway", net.url, "status")
    assert status.returncode == 0, status.stderr
    members = in_process(capsys, "client", "--gateway", net.url, "members")
    assert members.returncode == 2 and "give --key FILE" in members.stderr
    write = in_process(capsys, "client", "--gateway", net.url, "cancel", "t")
    assert write.returncode == 2 and "give --key FILE" in write.stderr
    for done in (status, members, write):
        assert "Is a directory" not in done.stderr


# ---- a key registered twice -----------------------------------------------------------

def test_registering_a_member_twice_says_the_key_is_one_already_with_its_role(client):
    key = hexkey()
    args = ("register", key, "--role", "citizen", "--age-band", "21plus", "--area", "GMS")
    assert client(*args).returncode == 0
    again = client(*args)
    assert again.returncode == 1
    assert again.stderr.strip() == \
        f"rejected: exists: {short(key)} is already a member: a citizen"
    assert "a task id" not in again.stderr


def test_an_import_names_the_keys_already_members_with_their_roles(client, tmp_path):
    citizen, shop = hexkey(), hexkey()
    assert client("register", citizen, "--role", "citizen", "--age-band", "under21",
                  "--area", "GMS").returncode == 0
    assert client("register", shop, "--role", "merchant", "--name", "Old Shop").returncode == 0
    assert client("revoke", shop).returncode == 0
    path = tmp_path / "members.csv"
    path.write_text(f"key,role,age_band,area,name\n{citizen},citizen,21plus,GMS,\n"
                    f"{shop},merchant,,,New Shop\n")
    done = client("import", str(path), "--json")
    assert done.returncode == 1
    reasons = {f["line"]: f["reason"] for f in json.loads(done.stdout)["failed"]}
    assert reasons[2] == f"refused by the chain: exists: {short(citizen)} is already a " \
                         f"member: a citizen"
    assert reasons[3].startswith(f"refused by the chain: exists: {short(shop)} was a member "
                                 f"(a merchant, revoked or recovered)")


# ---- names in tables ------------------------------------------------------------------

async def _payout_of(net, shop: Keypair, task: str) -> str:
    citizen = Keypair.generate()
    async with Client(net.url, net.admin) as admin:
        await admin.send("member.register", {"key": citizen.public, "role": "citizen",
                                             "age_band": "21plus", "area": "GMS"})
        await admin.send("member.register", {"key": shop.public, "role": "merchant",
                                             "name": "Bakkerij Pieters"})
        await admin.send("task.post", {"task": task, "title": "Repair cafe", "area": "GMS",
                                       "domain": "care", "reward": 1000, "minutes": 120,
                                       "slots": 1, "deadline": time.time_ns() // 10**6
                                       + DAY_MS})
        await admin.send("task.claim", {"task": task}, citizen)
        await admin.send("task.submit", {"task": task, "proof": bytes(32)}, citizen)
        await admin.send("task.approve", {"task": task, "citizen": citizen.public})
        await admin.send("coin.spend", {"to": shop.public, "amount": 600}, citizen)
        return (await admin.send("coin.redeem", {"amount": 400}, shop))["tx_id"]


def test_payouts_name_the_merchant_with_its_key_shortened_even_once_revoked(net, client):
    shop = Keypair.generate()
    payout = asyncio.run(_payout_of(net, shop, unique("cafe")))
    shown = f"Bakkerij Pieters ({short(shop.public.hex())})"
    line = [x for x in client("payouts").stdout.splitlines() if x.startswith(payout[:16])]
    assert len(line) == 1 and shown in line[0]
    assert client("revoke", shop.public.hex()).returncode == 0
    line = [x for x in client("payouts").stdout.splitlines() if x.startswith(payout[:16])]
    assert len(line) == 1 and shown in line[0]


# ---- tasks: order and times -----------------------------------------------------------

def test_the_task_view_lists_ids_as_people_read_them():
    ids = ["walk-10", "walk-2", "b-1", "a-10", "a-9", "Walk-3", "walk-1"]
    record = {"title": "t", "area": "GMS", "domain": "care", "reward": 100, "minutes": 60,
              "slots": 1, "deadline": 10, "cancelled": False, "taken": 0}
    state = InMemoryState({st.task_key(i): st.pack(record) for i in ids})
    assert [t["task"] for t in queries.tasks(state, 0)] == \
        ["a-9", "a-10", "b-1", "walk-1", "walk-2", "Walk-3", "walk-10"]


@pytest.fixture
def far_from_amsterdam(monkeypatch):
    """The machine's own zone is New York's: what is printed must not depend on it."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_tasks_in_natural_order_with_times_in_amsterdam_whatever_the_machines_zone(
        client, far_from_amsterdam):
    area, prefix = unique("area"), unique("walk")
    for suffix in ("b-1", "a-10", "a-9"):
        done = client("post-task", f"{prefix}-{suffix}", "--title", "Walk", "--area", area,
                      "--domain", "care", "--reward", "5", "--minutes", "60",
                      "--deadline", "2030-06-30")
        assert done.returncode == 0, done.stderr
    lines = client("tasks", "--area", area).stdout.splitlines()[2:]
    assert [line.split()[0] for line in lines] == \
        [f"{prefix}-a-9", f"{prefix}-a-10", f"{prefix}-b-1"]
    assert all(line.endswith("2030-06-30 23:59 CEST") for line in lines)
    end_of_day = datetime(2030, 6, 30, 23, 59, 59, tzinfo=ZoneInfo("Europe/Amsterdam"))
    listed = json.loads(client("tasks", "--area", area, "--json").stdout)
    assert {t["deadline"] for t in listed} == {int(end_of_day.timestamp() * 1000)}
    one = client("task", f"{prefix}-a-9").stdout
    assert "open until 2030-06-30 23:59 CEST" in one
