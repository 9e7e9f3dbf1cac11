"""`stadsmunt client` as staff run it, against a real validator: tables and --json, the
CSV import's report of bad rows, and the exit codes 0 / 1 / 2, never with a traceback.

Most commands run through `ops.cli.main` in this process (the whole command line but the
interpreter's start, which costs a second a command on a loaded machine); the exit-code
tests also run it as a child process, the way staff start it."""
from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass

import pytest

from hypothesis import given, settings, strategies as hs

from clientkit import run_cli
from client import Client
from node.keys import Keypair, write_key_file
from ops.cli import main
from ops.client_cmd import cents
from ops.client_rows import euros

DAY_MS = 24 * 3600 * 1000


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def staff(net, capsys):
    """`staff(*args)`: `stadsmunt client --gateway URL --key ADMIN *args`, in process. An
    exception escaping main() fails the test: that would be a traceback for staff."""
    def run(*args: str) -> Done:
        capsys.readouterr()
        try:
            code = main(["client", "--gateway", net.url, "--key", str(net.admin_file),
                         *args])
        except SystemExit as exit_:      # argparse's own usage errors
            code = exit_.code
        out, err = capsys.readouterr()
        return Done(code, out, err)
    return run


def hexkey() -> str:
    return Keypair.generate().public.hex()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


# ---- amounts --------------------------------------------------------------------------

@settings(max_examples=200)
@given(hs.integers(0, 2**53 - 1))
def test_an_amount_shown_in_euros_reads_back_as_the_same_cents(value):
    assert cents(euros(value).replace(",", ""), "amount", least=0) == value


def test_amounts_take_whole_euros_and_a_comma():
    assert cents("15", "x") == 1500 and cents("15,5", "x") == 1550 and cents("0.01", "x") == 1


# ---- writes and reads -----------------------------------------------------------------

def test_register_then_account_as_a_table_and_as_json(staff):
    key = hexkey()
    done = staff("register", key, "--role", "citizen", "--age-band", "under21",
                 "--area", "Hoensbroek")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("committed at height ") and "member.registered" in done.stdout
    table = staff("account", key)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0] == f"{key}: citizen, age_band under21, area Hoensbroek, active"
    assert lines[1] == "balance 0.00"
    assert lines[2].split() == ["period", "earned", "reserved", "cap", "remaining"]
    as_json = json.loads(staff("account", key, "--json").stdout)
    assert as_json["key"] == key and as_json["balance"] == 0
    assert as_json["earnings"]["month"]["earned"] == 0


def test_post_task_shows_in_the_tasks_table_and_json_with_euros_and_cents(staff):
    task, area = unique("walk"), unique("area")
    done = staff("post-task", task, "--title", "Litter walk", "--area", area,
                 "--domain", "public-space", "--reward", "12.50", "--minutes", "180",
                 "--slots", "4", "--deadline", "+7d")
    assert done.returncode == 0, done.stderr
    table = staff("tasks", "--area", area).stdout.splitlines()
    assert table[0].split() == ["task", "title", "area", "reward", "min", "taken", "status",
                                "deadline"]
    assert table[2].split()[:7] == [task, "Litter", "walk", area, "12.50", "180", "0/4"]
    listed = json.loads(staff("--json", "tasks", "--area", area).stdout)
    assert [(t["task"], t["reward"], t["slots"]) for t in listed] == [(task, 1250, 4)]


async def _work_to_review(net, task, citizen, other, shop) -> None:
    """Two citizens and a merchant registered; both citizens claimed and submitted."""
    async with Client(net.url, net.admin) as client:
        await client.submit_many([
            await client.sign("member.register", {"key": k.public, "role": "citizen",
                                                  "age_band": "21plus", "area": "GMS"})
            for k in (citizen, other)] + [await client.sign(
                "member.register", {"key": shop.public, "role": "merchant",
                                    "name": "De Kroon"})])
        await client.send("task.post", {"task": task, "title": "Repair cafe", "area": "GMS",
                                        "domain": "care", "reward": 1000, "minutes": 120,
                                        "slots": 3, "deadline": _now() + DAY_MS})
        for who in (citizen, other):
            await client.send("task.claim", {"task": task}, who)
            await client.send("task.submit", {"task": task, "proof": bytes(32)}, who)


async def _spend_and_redeem(net, citizen, shop) -> str:
    async with Client(net.url, net.admin) as client:
        await client.send("coin.spend", {"to": shop.public, "amount": 600}, citizen)
        return (await client.send("coin.redeem", {"amount": 400}, shop))["tx_id"]


def test_approve_reject_and_confirm_a_payout_from_the_command_line(net, staff):
    citizen, other, shop = Keypair.generate(), Keypair.generate(), Keypair.generate()
    task = unique("cafe")
    asyncio.run(_work_to_review(net, task, citizen, other, shop))
    assert staff("approve", task, citizen.public.hex()).returncode == 0
    rejected = staff("reject", task, other.public.hex(), "--reason", "No photo.")
    assert rejected.returncode == 0 and "task.rejected" in rejected.stdout
    year = json.loads(staff("account", citizen.public.hex(), "--json").stdout)
    year = int(year["earnings"]["year"]["period"])
    statement = staff("statement", citizen.public.hex(), "--year", str(year)).stdout
    assert statement.splitlines()[-1].split() == ["total", "10.00"]
    shown = staff("task", task).stdout
    assert f"{citizen.public.hex()}  approved" in shown
    assert f"{other.public.hex()}  rejected" in shown
    payout = asyncio.run(_spend_and_redeem(net, citizen, shop))
    pending = staff("payouts", "--status", "pending").stdout
    assert payout[:16] in pending
    confirmed = staff("confirm", payout, "--reference", "SEPA-42")
    assert confirmed.returncode == 0, confirmed.stderr
    paid = json.loads(staff("payouts", "--status", "paid", "--json").stdout)
    assert {"payout": payout, "merchant": shop.public.hex(), "amount": 400,
            "status": "paid", "reference": "SEPA-42"} in paid
    again = staff("confirm", payout, "--reference", "SEPA-42")
    assert again.returncode == 1
    assert "rejected: invalid_state" in again.stderr


def _now() -> int:
    return time.time_ns() // 1_000_000


# ---- the CSV import -------------------------------------------------------------------

def test_import_registers_the_good_rows_and_names_each_bad_row_with_its_reason(staff, tmp_path):
    a, b, c, taken = hexkey(), hexkey(), hexkey(), hexkey()
    assert staff("register", taken, "--role", "merchant", "--name", "Taken").returncode == 0
    rows = ["key,role,age_band,area,name",
            f"{a},citizen,21plus,Meezenbroek,",            # 2 good
            f"{b},merchant,,,Cafe De Kroon",               # 3 good
            "zz12,citizen,21plus,GMS,",                    # 4 bad key
            f"{c},citizen,over65,GMS,",                    # 5 bad age band
            f"{hexkey()},merchant,,,",                     # 6 merchant without a name
            f"{taken},citizen,21plus,GMS,",                # 7 the chain: exists
            f"{hexkey()},citizen,21plus",                  # 8 too few columns
            "",                                            # blank: no row
            f"{hexkey()},mayor,,,",                        # 10 unknown role
            f"{hexkey()},reviewer,,GMS,"]                  # 11 a reviewer with an area
    path = tmp_path / "members.csv"
    path.write_text("\n".join(rows) + "\n")
    done = staff("import", str(path))
    assert done.returncode == 1
    report = done.stdout.splitlines()
    assert report[0] == "registered 2 of 9 rows; 7 failed:"
    reasons = {int(line.split()[0]): line for line in report[3:]}
    assert sorted(reasons) == [4, 5, 6, 7, 8, 10, 11]
    assert "key must be 64 hex characters" in reasons[4]
    assert "age_band must be 21plus or under21" in reasons[5]
    assert "a merchant needs name" in reasons[6]
    assert "refused by the chain: exists" in reasons[7]
    assert "3 columns where the header has 5" in reasons[8]
    assert "role must be one of" in reasons[10]
    assert "a reviewer carries no area" in reasons[11]
    as_json = json.loads(staff("account", a, "--json").stdout)
    assert as_json["area"] == "Meezenbroek"
    again = json.loads(staff("import", str(path), "--json").stdout)
    assert again["registered"] == 0 and again["rows"] == 9
    assert {f["line"]: f["code"] for f in again["failed"]}[2] == "exists"


def test_import_of_a_clean_file_exits_0(staff, tmp_path):
    path = tmp_path / "clean.csv"
    path.write_text("role,key,area,age_band\n" + "".join(
        f"citizen,{hexkey()},GMS,21plus\n" for _ in range(5)))
    done = staff("import", str(path))
    assert (done.returncode, done.stdout.strip()) == (0, "registered 5 of 5 rows")


def test_import_refuses_a_file_whose_header_is_wrong_with_exit_2(staff, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(f"key,role,colour\n{hexkey()},citizen,blue\n")
    done = staff("import", str(path))
    assert done.returncode == 2 and "bad columns" in done.stderr


# ---- exit codes -----------------------------------------------------------------------

def test_a_rejection_or_a_problem_exits_1_with_the_reason_on_stderr(staff):
    task = unique("dup")
    args = ["post-task", task, "--title", "t", "--area", "GMS", "--domain", "care",
            "--reward", "1", "--minutes", "60", "--deadline", "+1d"]
    assert staff(*args).returncode == 0
    again = staff(*args)
    assert again.returncode == 1 and "rejected: exists: That already exists" in again.stderr
    missing = staff("task", unique("none"))
    assert missing.returncode == 1 and "not_found (404)" in missing.stderr


def test_bad_usage_and_an_unreachable_gateway_exit_2_without_a_traceback(net, staff, capsys,
                                                                        tmp_path):
    loose = tmp_path / "loose.key"
    write_key_file(loose, Keypair.generate())
    loose.chmod(0o644)
    cases = [
        ("account", "not-a-key"),
        ("post-task", "t", "--title", "t", "--area", "a", "--domain", "d", "--reward",
         "ten", "--minutes", "1", "--deadline", "+1d"),
        ("post-task", "t", "--title", "t", "--area", "a", "--domain", "d", "--reward",
         "1", "--minutes", "1", "--deadline", "next tuesday"),
        ("register", hexkey(), "--role", "citizen"),
        ("tasks", "--status", "sleeping"),
        ("import", str(tmp_path / "missing.csv")),
        ("policy", "2030", "--hourly-21plus", "5", "--hourly-under21", "3", "--monthly",
         "300", "--yearly", "200"),
    ]
    for case in cases:
        done = staff(*case)
        assert done.returncode == 2, (case, done.stderr)
    capsys.readouterr()
    assert main(["client", "--gateway", net.url, "cancel", "t"]) == 2
    assert "--key" in capsys.readouterr().err
    assert main(["client", "--gateway", net.url, "--key", str(loose), "cancel", "t"]) == 2
    assert "chmod 600" in capsys.readouterr().err
    assert main(["client", "--gateway", net.url.removeprefix("http://"), "status"]) == 2
    assert "is a URL such as" in capsys.readouterr().err
    with_closed_port = run_cli("client", "--gateway", "http://127.0.0.1:9", "status")
    assert with_closed_port.returncode == 2 and "unreachable" in with_closed_port.stderr
    refused = run_cli("client", "--gateway", net.url, "task", unique("none"))
    assert refused.returncode == 1 and "not_found" in refused.stderr
    for done in (with_closed_port, refused):
        assert "Traceback" not in done.stderr


def test_reads_of_public_things_need_no_key_and_the_gateway_may_come_from_the_environment(
        net, capsys):
    done = run_cli("client", "status", env={"STADSMUNT_GATEWAY": net.url})
    assert done.returncode == 0 and done.stdout.startswith(f"chain {net.chain} at height")
    assert main(["client", "--gateway", net.url, "merchants", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
