"""`stadsmunt client` for members after governance, against a real one-validator network:
an admin's recovery opens a delayed one (the old key frozen at once), a steward or an
admin cancels it, completing early is refused with the time it becomes effective;
update, revoke and the members list; and what the admin may no longer do alone points to
`stadsmunt gov propose` with the command to run."""
from __future__ import annotations

import asyncio
import json

import pytest

from clientkit import in_process
from client import Client
from node.keys import Keypair
from ops.client_rows import ZONE_NAME


@pytest.fixture
def client(net, capsys):
    """`client(*args, key=FILE)`: `stadsmunt client --gateway URL --key FILE *args`,
    in process, with the admin's key unless given."""
    def run(*args: str, key=None):
        return in_process(capsys, "client", "--gateway", net.url, "--key",
                          str(key or net.admin_file), *args)
    return run


def hexkey() -> str:
    return Keypair.generate().public.hex()


def citizen(client, area: str = "GMS") -> str:
    key = hexkey()
    done = client("register", key, "--role", "citizen", "--age-band", "21plus",
                  "--area", area)
    assert done.returncode == 0, done.stderr
    return key


def test_an_admins_recover_opens_a_delayed_recovery_and_freezes_the_old_key(client, net):
    old, new = citizen(client), hexkey()
    done = client("recover", old, new)
    assert done.returncode == 0, done.stderr
    assert "recovery opened at height " in done.stdout
    assert f"{old} is frozen from now on" in done.stdout
    assert f"({ZONE_NAME})" in done.stdout
    assert f"stadsmunt client recovery cancel {old}" in done.stdout
    shown = client("account", old)
    assert f"FROZEN: a recovery is open to {new}, effective " in shown.stdout
    account = json.loads(client("account", old, "--json").stdout)
    assert account["frozen"] is True and account["recovery"]["new"] == new

    early = client("recovery", "complete", old)
    assert early.returncode == 1 and "rejected: invalid_state" in early.stderr
    assert "a recovery completes only once it is effective at " in early.stderr
    twice = client("recover", old, hexkey())
    assert twice.returncode == 1 and "a recovery of this key is open already" in twice.stderr

    cancelled = client("recovery", "cancel", old, key=net.steward_file)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"{old} is no longer frozen" in cancelled.stdout
    assert json.loads(client("account", old, "--json").stdout)["frozen"] is False
    again = client("recover", old, new)
    assert again.returncode == 1 and "rejected: invalid_state" in again.stderr
    assert f"stadsmunt gov propose member.recover --arg old={old} --arg new={new}" \
        in again.stderr
    none_open = client("recovery", "cancel", old)
    assert none_open.returncode == 1 and f"no recovery of {old} is open" in none_open.stderr


def test_an_admin_may_cancel_too_and_the_json_carries_the_events(client):
    old = citizen(client)
    opened = json.loads(client("recover", old, hexkey(), "--json").stdout)
    assert opened["events"][0]["kind"] == "member.recovery_opened"
    done = client("recovery", "cancel", old, "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["events"][0]["kind"] == "member.recovery_cancelled"


def test_a_frozen_key_is_refused_with_the_sentence_its_app_shows(client, net):
    holder = Keypair.generate()
    assert client("register", holder.public.hex(), "--role", "citizen", "--age-band",
                  "under21", "--area", "GMS").returncode == 0
    assert client("recover", holder.public.hex(), hexkey()).returncode == 0

    async def claim():
        async with Client(net.url, holder) as app:
            return await app.send("task.claim", {"task": "any"}, check=False)
    result = asyncio.run(claim())
    assert result["code"] == "frozen" and "frozen" in result["detail"]


def test_update_revoke_and_the_members_list(client):
    area = "Centrum"
    key = citizen(client, "GMS")
    updated = client("update", key, "--area", area)
    assert updated.returncode == 0 and "member.updated" in updated.stdout
    listed = json.loads(client("members", "--role", "citizen", "--json").stdout)
    assert {"key": key, "role": "citizen", "active": True, "age_band": "21plus",
            "area": area} in listed
    stewards = client("members", "--role", "steward").stdout
    assert "municipality" in stewards
    revoked = client("revoke", key)
    assert revoked.returncode == 0 and "member.revoked" in revoked.stdout
    active = json.loads(client("members", "--json").stdout)
    assert key not in [m["key"] for m in active]
    everyone = client("members", "--all").stdout
    assert any(line.startswith(key) and line.endswith("revoked")
               for line in everyone.splitlines())
    assert client("update", key).returncode == 2          # nothing to change


@pytest.mark.parametrize("role", ["reviewer", "admin", "auditor"])
def test_registering_a_privileged_role_points_to_governance(client, role):
    key = hexkey()
    done = client("register", key, "--role", role)
    assert done.returncode == 1 and "rejected: unauthorized" in done.stderr
    assert (f"stadsmunt gov propose member.register --arg key={key} --arg role={role}"
            in done.stderr)


def test_setting_policy_points_to_governance_with_the_cents(client):
    done = client("policy", "2095", "--hourly-21plus", "5.90", "--hourly-under21", "3.50",
                  "--monthly", "230", "--yearly", "2300", "--programme", "1500")
    assert done.returncode == 1 and "rejected: unauthorized" in done.stderr
    assert ("stadsmunt gov propose policy.set --arg year=2095 --arg hourly_cap_21plus=590 "
            "--arg hourly_cap_under21=350 --arg monthly_cap=23000 --arg yearly_cap=230000 "
            "--arg programme_yearly_cap=150000") in done.stderr


def test_a_steward_signing_an_admins_kind_is_told_so(client, net):
    done = client("register", hexkey(), "--role", "reviewer", key=net.steward_file)
    assert done.returncode == 1
    assert "only an admin signs member.register" in done.stderr
