"""node.toml is the one place of a validator's limits (node/config.py): the relations
between settings that must hold are refused at load with a ConfigError naming the
settings, one test each; the consensus core's Config of a validator is built by
`consensus_config` alone, with every field passed (none from Config's test defaults),
and a default node.toml gives the values a validator had before the limits moved there;
the wire-size bounds the relations use hold for the encoders."""
from __future__ import annotations

import ast
import dataclasses
import re
import socket
from pathlib import Path

import pytest

from consensus import wire
from consensus.config import Config
from consensus.digest import signing_domain, validator_set_hash
from consensus.messages import PrePrepare
from ledger_kit import keypair
from node import config as node_config
from node import peering
from node.block import BlockRecord
from node.frames import MESSAGE_OVERHEAD, TAG_BYTES
from node.genesis import Genesis, GenesisValidator, Organisation
from node.runtime import Validator
from ops import network
from protocol.limits import MAX_ENVELOPE_BYTES

REPO = Path(__file__).resolve().parents[2]
NAMES = ("municipality", "cbs", "brightlands", "vng")
MAX_U64 = 2 ** 64 - 1
MiB = 1024 * 1024


def _genesis(validators: int = 4, **changes) -> Genesis:
    """A genesis with Genesis's own default checkpoint interval (64) unless changed."""
    names = [f"v{i}" for i in range(validators)]
    return Genesis(chain="relations-test", city="Heerlen", coin_name="Heitje",
                   coin_symbol="HHT",
                   validators=tuple(GenesisValidator(n, keypair(n).public) for n in names),
                   admins=(keypair("admin").public,),
                   organisations=tuple(Organisation(n, (keypair("s-" + n).public,))
                                       for n in names), **changes)


def _folder(tmp_path: Path, **settings) -> Path:
    """A validator folder's node.toml as `network init` writes it, with `settings`
    ("section.key": value) changed."""
    text = node_config.render(NAMES[0], "127.0.0.1:7100", "127.0.0.1:7101",
                              {n: f"127.0.0.1:{7102 + i}" for i, n in enumerate(NAMES[1:])})
    for dotted, value in settings.items():
        section, key = dotted.split(".")
        body = text.split(f"[{section}]\n", 1)
        assert len(body) == 2 and re.search(rf"^{key} = ", body[1], flags=re.M), dotted
        body[1] = re.sub(rf"^{key} = .*$", f"{key} = {value}", body[1], count=1, flags=re.M)
        text = f"[{section}]\n".join(body)
    (tmp_path / node_config.CONFIG_NAME).write_text(text)
    return tmp_path


def _refused(folder: Path, *settings: str) -> str:
    """load() refuses the file with a message that starts with its path and the first
    setting and names every one of `settings`."""
    with pytest.raises(node_config.ConfigError) as error:
        node_config.load(folder)
    message = str(error.value)
    assert message.startswith(f"{folder / node_config.CONFIG_NAME}: {settings[0]}"), message
    for setting in settings:
        assert setting.split()[-1] in message, (setting, message)
    return message


# ---- the default settings pass, and give the values a validator had -------------------

def test_the_default_settings_hold_every_relation(tmp_path):
    loaded = node_config.load(_folder(tmp_path))
    node_config.check_roster(loaded, list(NAMES))
    node_config.check_relations(loaded.limits, loaded.timing, 100)


def test_a_default_node_gets_the_consensus_config_it_had(tmp_path):
    """Today's values, computed by hand for a default node.toml and the default genesis
    checkpoint interval (64), as node/runtime.py built them before node/config.py did:
    window max(4 x 64, 64), max_message_bytes 8 MiB - 1,024, the view-change timeout
    the request timeout, the rest consensus defaults or node.toml's defaults."""
    loaded = node_config.load(_folder(tmp_path))
    genesis = _genesis()
    assert genesis.checkpoint_interval == 64
    built = node_config.consensus_config(genesis, loaded.limits, loaded.timing)
    expected = {
        "chain": "relations-test", "validators": tuple(genesis.validator_keys()),
        "checkpoint_interval": 64, "window": 256,
        "batch_max_count": 1_000, "batch_max_bytes": 4 * MiB, "batch_wait_ticks": 3,
        "max_in_flight": 8, "pending_limit": 50_000, "client_pending_limit": 3_125,
        "seen_limit": 200_000, "max_message_bytes": 8 * MiB - 1024,
        "request_timeout_ticks": 120, "censorship_factor": 8,
        "view_change_timeout_ticks": 120, "max_backoff_exponent": 6,
        "max_clock_skew_ms": 2_000, "status_interval_ticks": 5, "fetch_timeout_ticks": 20,
        "fetch_max_blocks": 64, "max_views_ahead": 64, "genesis_hash": genesis.hash(),
        "domain": signing_domain("relations-test", genesis.hash()),
        "switch_margin": 256, "first_height": 1, "base_hash": bytes(32),
        "set_hash": validator_set_hash(signing_domain("relations-test", genesis.hash()), 1,
                                       tuple(genesis.validator_keys())),
    }
    assert {f.name for f in dataclasses.fields(Config)} == set(expected)
    assert {f.name: getattr(built, f.name) for f in dataclasses.fields(Config)} == expected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_running_validator_gets_its_limits_from_node_config(tmp_path):
    """`network init`'s genesis has checkpoint interval 16: window max(4 x 16, 64) = 64.
    The runtime's Config is consensus_config's, its transport and own bounds
    runtime_limits', with the values it had before."""
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    settings = node_config.load(tmp_path / "net" / "municipality")
    node = Validator(settings)
    try:
        assert node.consensus_config == node_config.consensus_config(
            node.genesis, settings.limits, settings.timing)
        assert node.replica.config is node.consensus_config
        assert (node.consensus_config.checkpoint_interval, node.consensus_config.window) \
            == (16, 64)
        assert node.transport.limits.max_frame_bytes == 8 * MiB
        assert node.transport.limits.max_queue_bytes == 64 * MiB
        derived = node.runtime_limits
        assert (derived.in_flight_limit, derived.fetch_answer_bytes, derived.recent_ids,
                derived.admission_min_pool, derived.admission_min_own_share) \
            == (100_000, 4 * MiB, 50_000, 500, 250)
    finally:
        node.store.close()


# ---- one test per relation ------------------------------------------------------------

def test_batch_max_count_at_most_what_a_block_may_hold(tmp_path):
    assert node_config.MAX_BATCH_COUNT == 100_000
    folder = _folder(tmp_path, **{"limits.batch_max_count": 100_001,
                                  "limits.pending_requests": 200_000})
    message = _refused(folder, "[limits] batch_max_count")
    assert "MAX_TXS_PER_BLOCK" in message


def test_batch_max_bytes_at_least_one_envelope(tmp_path):
    folder = _folder(tmp_path, **{"limits.batch_max_bytes": MAX_ENVELOPE_BYTES - 1})
    _refused(folder, "[limits] batch_max_bytes")
    node_config.load(_folder(tmp_path, **{"limits.batch_max_bytes": MAX_ENVELOPE_BYTES}))


def test_a_pool_smaller_than_a_batch_is_allowed(tmp_path):
    """Not a relation: such a pool's batches are never full, so each waits
    batch_wait_ticks (tests/gateway/test_gateway_service.py keeps one request waiting
    so), and nothing else changes."""
    loaded = node_config.load(_folder(tmp_path, **{"limits.pending_requests": 1}))
    node_config.check_roster(loaded, list(NAMES))


def test_a_full_batch_pre_prepare_fits_a_frame(tmp_path):
    _refused(_folder(tmp_path, **{"limits.max_frame_bytes": 4 * MiB}),
             "[limits] max_frame_bytes", "batch_max_bytes", "batch_max_count")


def test_a_full_batch_pre_prepare_fits_the_send_queue(tmp_path):
    _refused(_folder(tmp_path, **{"limits.send_queue_bytes": 4 * MiB}),
             "[limits] send_queue_bytes", "batch_max_bytes", "batch_max_count")


def _refused_with_the_roster(tmp_path, loaded, setting: str) -> str:
    """A relation that needs the number of validators: refused once the roster is known
    (check_roster, naming the file) and by consensus_config; the message."""
    with pytest.raises(node_config.ConfigError) as error:
        node_config.check_roster(loaded, list(NAMES))
    message = str(error.value)
    assert message.startswith(f"{tmp_path / node_config.CONFIG_NAME}: {setting}"), message
    with pytest.raises(node_config.ConfigError) as error:
        node_config.consensus_config(_genesis(), loaded.limits, loaded.timing)
    assert str(error.value).startswith(setting), str(error.value)
    return message


def test_a_catch_up_answer_of_one_full_block_fits_a_frame(tmp_path):
    """A frame that holds the full pre-prepare but not the block record (which carries a
    little more) is refused at load; one that holds the record but not the certificate
    of four validators, once the genesis says there are four (check_roster)."""
    limits = node_config.Limits()
    proposal = node_config.preprepare_bytes(limits)
    tight = proposal + node_config.FRAME_HEADROOM_BYTES
    _refused(_folder(tmp_path, **{"limits.max_frame_bytes": tight}),
             "[limits] max_frame_bytes", "send_queue_bytes", "batch_max_bytes",
             "batch_max_count")
    unsigned = node_config.block_answer_bytes(limits, 0) + node_config.FRAME_HEADROOM_BYTES
    loaded = node_config.load(_folder(tmp_path, **{"limits.max_frame_bytes": unsigned}))
    message = _refused_with_the_roster(tmp_path, loaded, "[limits] max_frame_bytes")
    assert "4 validators' signatures" in message


def test_a_full_block_fits_what_the_store_reads_back(tmp_path):
    folder = _folder(tmp_path, **{"limits.batch_max_bytes": 64 * MiB,
                                  "limits.max_frame_bytes": 128 * MiB,
                                  "limits.send_queue_bytes": 256 * MiB})
    message = _refused(folder, "[limits] batch_max_bytes")
    assert "stored block" in message


def test_batch_wait_ticks_less_than_request_timeout_ticks_with_backups(tmp_path):
    """Checked once the genesis says there are backups (check_roster, consensus_config);
    a single validator has nobody to suspect it."""
    loaded = node_config.load(_folder(tmp_path, **{"timing.batch_wait_ticks": 120}))
    message = _refused_with_the_roster(tmp_path, loaded, "[timing] batch_wait_ticks")
    assert "request_timeout_ticks" in message
    node_config.consensus_config(_genesis(1), loaded.limits, loaded.timing)
    again = node_config.load(_folder(tmp_path, **{"timing.batch_wait_ticks": 119}))
    node_config.check_roster(again, list(NAMES))


def test_max_clock_skew_ms_more_than_tick_ms(tmp_path):
    _refused(_folder(tmp_path, **{"timing.max_clock_skew_ms": 10}),
             "[timing] max_clock_skew_ms", "tick_ms")
    node_config.load(_folder(tmp_path, **{"timing.max_clock_skew_ms": 11}))


def test_a_validator_refuses_to_start_when_the_genesis_breaks_a_relation(tmp_path):
    """Relations that need the genesis (a certificate's signatures) are checked again as
    the validator starts: a StartError naming the file and the settings."""
    from node.runtime import StartError
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    folder = tmp_path / "net" / "municipality"
    limits = node_config.Limits()
    settings = dataclasses.replace(
        node_config.load(folder),
        limits=dataclasses.replace(limits, max_frame_bytes=node_config.block_answer_bytes(
            limits, 0) + node_config.FRAME_HEADROOM_BYTES))
    with pytest.raises(StartError, match=r"node\.toml: \[limits\] max_frame_bytes"):
        Validator(settings)


# ---- the bounds the relations use hold for the encoders -------------------------------

@pytest.mark.parametrize("count", [0, 1, 17, 300])
def test_the_wire_overheads_bound_the_encoders(count):
    """Worst cases: every integer a u64, the largest signature the wire takes, the
    largest envelope the door admits; a certificate signed by `count` validators."""
    payloads = tuple(bytes(MAX_ENVELOPE_BYTES) for _ in range(count))
    limits = node_config.Limits(batch_max_count=max(count, 1),
                                batch_max_bytes=max(count, 1) * MAX_ENVELOPE_BYTES)
    signature = bytes(wire.MAX_SIGNATURE_BYTES)
    proposal = peering.consensus_frame(
        PrePrepare(MAX_U64, MAX_U64, MAX_U64, bytes(32), payloads, signature))
    assert len(proposal) <= node_config.preprepare_bytes(limits)
    record = BlockRecord(MAX_U64, MAX_U64, MAX_U64, *(bytes(32),) * 5, payloads,
                         tuple((MAX_U64, signature) for _ in range(count)), MAX_U64, MAX_U64)
    answer = peering.blocks_frame([record.encode()])
    assert len(answer) <= node_config.block_answer_bytes(limits, count)


def test_the_frame_headroom_covers_what_a_frame_adds():
    """consensus_config's max_message_bytes and the relations leave FRAME_HEADROOM_BYTES
    of a frame: the AEAD tag, the message's length prefix and the peer frame's kind."""
    assert node_config.FRAME_HEADROOM_BYTES >= TAG_BYTES + MESSAGE_OVERHEAD + 1
    limits = node_config.Limits()
    transport = node_config.TransportLimits(max_frame_bytes=limits.max_frame_bytes,
                                            max_queue_bytes=limits.send_queue_bytes)
    assert node_config.largest_message_bytes(limits) <= transport.max_message_bytes


# ---- the one function -----------------------------------------------------------------

def _calls(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.append(func.id if isinstance(func, ast.Name) else
                         func.attr if isinstance(func, ast.Attribute) else "")
    return names


def test_the_runtime_builds_no_consensus_config_or_transport_limits_itself():
    """node/runtime.py takes its limits from node/config.py's runtime_limits: it neither
    imports consensus.config nor constructs a Config or TransportLimits."""
    tree = ast.parse((REPO / "node" / "runtime.py").read_text())
    imported = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert "consensus.config" not in imported
    calls = _calls(tree)
    assert not {"Config", "ConsensusConfig", "TransportLimits"} & set(calls)
    assert calls.count("runtime_limits") == 1


def test_consensus_config_passes_every_field_of_config():
    """No field of a validator's Config comes from Config's test defaults."""
    tree = ast.parse((REPO / "node" / "config.py").read_text())
    function = next(node for node in ast.walk(tree)
                    if isinstance(node, ast.FunctionDef) and node.name == "consensus_config")
    built = [node for node in ast.walk(function) if isinstance(node, ast.Call)
             and getattr(node.func, "id", "") == "ConsensusConfig"]
    assert len(built) == 1
    passed = {keyword.arg for keyword in built[0].keywords}
    assert passed == {f.name for f in dataclasses.fields(Config) if f.init}
