"""From 1 November (Amsterdam) a coming year without a cap policy of its own is said in
the gateway's status, in the validator's log (a line a day) and by `stadsmunt genesis`:
otherwise the current year's policy carries over on 1 January without anyone deciding."""
from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from chaincode import state as st
from chaincode.policies import coming_year_unset
from chaincode.queries import InMemoryState
from gateway.app import status_warnings
from node import config as node_config, keys
from node import runtime
from node.runtime import Validator
from ops import cli, network
from ops.network import free_base_port

# Amsterdam is UTC+1 in winter: 1 November 2026 00:00 local is 31 October 23:00 UTC
NOV_1_2026_MS = 1_793_487_600_000
OCT_31_2026_LAST_MS = NOV_1_2026_MS - 1
DEC_31_2026_MS = 1_798_758_000_000 - 1          # 31 December 23:59:59.999 local
JAN_1_2027_MS = 1_798_758_000_000


@pytest.mark.parametrize("now_ms, years, expected", [
    (OCT_31_2026_LAST_MS, [2025, 2026], None),    # one millisecond before: not yet
    (NOV_1_2026_MS, [2025, 2026], 2027),
    (DEC_31_2026_MS, [2026], 2027),
    (NOV_1_2026_MS, [2026, 2027], None),          # decided
    (JAN_1_2027_MS, [2026], None),                # 2027 itself: the fallback's own warning
])
def test_the_coming_year_is_due_from_the_first_of_november(now_ms, years, expected):
    assert coming_year_unset(years, now_ms) == expected


class _Node:
    def __init__(self, years: list[int]):
        self.store = InMemoryState({st.POLICY_YEARS: st.pack(years)})
        for year in years:
            self.store.data[st.policy_key(year)] = st.pack({"year": year})


def test_the_status_warns_of_the_coming_year_and_is_quiet_once_it_is_set():
    status = {"validators": [], "node": "cbs"}
    warned = status_warnings(_Node([2025, 2026]), status, NOV_1_2026_MS)
    assert any("no cap policy for 2027 yet" in w for w in warned), warned
    assert not any("2027" in w for w in status_warnings(_Node([2025, 2026]), status,
                                                         OCT_31_2026_LAST_MS))
    assert not any("2027" in w for w in status_warnings(_Node([2026, 2027]), status,
                                                         NOV_1_2026_MS))


def test_the_validator_logs_it_at_its_first_tick_and_then_daily(tmp_path, monkeypatch):
    network.init(tmp_path / "net", validators=4, base_port=free_base_port(8, preferred=None))
    node = Validator(node_config.load(tmp_path / "net" / "cbs"))
    try:
        monkeypatch.setattr(runtime, "_now_ms", lambda: NOV_1_2026_MS)
        with capture_logs() as logs:
            node._warn_of_policy()
        # the genesis of `network init` holds the default policies, 2021-2026
        assert [(e["event"], e["year"]) for e in logs] == [("cap_policy_missing", 2027)]
        monkeypatch.setattr(runtime, "_now_ms", lambda: OCT_31_2026_LAST_MS)
        with capture_logs() as logs:
            node._warn_of_policy()
        assert logs == []
        assert runtime.POLICY_CHECK_S == 24 * 3600
    finally:
        node.store.close()


def test_genesis_warns_when_it_holds_no_policy_for_the_coming_year(tmp_path, monkeypatch,
                                                                  capsys):
    def args(out):
        publics = [keys.Keypair.generate().public.hex() for _ in range(5)]
        made = ["genesis", "--chain", "heerlen-test", "--city", "Heerlen", "--coin", "Munt",
                "--symbol", "HM", "--admin",
                publics[4], "--out", str(out)]
        for i, key in enumerate(publics[:4]):
            made += ["--validator", f"p{i}={key}", "--organisation", f"p{i}={key}"]
        return made
    monkeypatch.setattr("ops.genesis_cmd.time.time_ns", lambda: NOV_1_2026_MS * 10**6)
    assert cli.main(args(tmp_path / "a.json")) == 0
    assert "no cap policy for 2027" in capsys.readouterr().err
    monkeypatch.setattr("ops.genesis_cmd.time.time_ns", lambda: OCT_31_2026_LAST_MS * 10**6)
    assert cli.main(args(tmp_path / "b.json")) == 0
    assert "cap policy" not in capsys.readouterr().err
