"""Ed25519 keys and the contract's key files (node/keys.py)."""
from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, strategies as st

from node.keys import KeyFileError, Keypair, read_key_file, verify, write_key_file


def test_seed_gives_the_rfc8032_public_key_and_signature():
    # RFC 8032, section 7.1, test 1 (empty message)
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pair = Keypair.from_seed(seed)
    assert pair.public.hex() == ("d75a980182b10ab7d54bfed3c964073a"
                                 "0ee172f3daa62325af021a68f707511a")
    assert pair.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


@given(st.binary(max_size=64), st.integers(0, 63), st.integers(1, 255))
def test_a_signature_verifies_only_for_its_message_and_key(message, at, flip):
    pair = Keypair.from_seed(b"\x01" * 32)
    signature = pair.sign(message)
    assert verify(pair.public, message, signature)
    bad = bytearray(signature)
    bad[at] ^= flip
    assert not verify(pair.public, message, bytes(bad))
    assert not verify(Keypair.from_seed(b"\x02" * 32).public, message, signature)
    assert not verify(pair.public, message + b"x", signature)


def test_verify_refuses_keys_and_signatures_of_the_wrong_length():
    pair = Keypair.from_seed(b"\x01" * 32)
    assert not verify(pair.public[:31], b"m", pair.sign(b"m"))
    assert not verify(pair.public, b"m", pair.sign(b"m")[:63])


def test_key_file_holds_the_seed_as_hex_with_mode_0600(tmp_path):
    pair = Keypair.generate()
    path = tmp_path / "admin.key"
    write_key_file(path, pair)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == pair.seed.hex() + "\n"
    assert read_key_file(path).public == pair.public


def test_key_file_is_never_overwritten(tmp_path):
    path = tmp_path / "k"
    write_key_file(path, Keypair.generate())
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, Keypair.generate())


@pytest.mark.parametrize("content, message", [
    ("abc\n", "64 hex"),
    ("zz" * 32 + "\n", "64 hex"),
    ("", "64 hex"),
    ("00" * 33, "64 hex"),
])
def test_bad_key_files_are_refused_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "k"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=message):
        read_key_file(path)


def test_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "k"
    path.write_text("00" * 32)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_file(path)


def test_missing_key_file_is_named(tmp_path):
    with pytest.raises(KeyFileError, match="no such key file"):
        read_key_file(tmp_path / "absent")


def test_keypair_repr_does_not_show_the_seed():
    pair = Keypair.from_seed(b"\x07" * 32)
    assert pair.seed.hex() not in repr(pair)
