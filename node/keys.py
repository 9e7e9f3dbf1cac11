"""Ed25519 keys: PyNaCl's raw libsodium bindings on the hot path, key files as the contract
describes them (`stadsmunt keygen`: the 32-byte seed as 64 lowercase hex characters and a
newline, file mode 0600).

The raw bindings avoid PyNaCl's object wrappers, which copy and re-validate on every call;
verification is the node's most frequent cryptographic operation.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl import bindings
from nacl.exceptions import BadSignatureError

from protocol.limits import KEY_BYTES, SIGNATURE_BYTES

SEED_BYTES = 32

_sign = bindings.crypto_sign
_open = bindings.crypto_sign_open


class KeyFileError(Exception):
    """A key file that is missing, unreadable, of the wrong form or too open."""


@dataclass(frozen=True, slots=True)
class Keypair:
    seed: bytes
    public: bytes
    secret: bytes     # libsodium's 64-byte form: seed followed by the public key

    @classmethod
    def from_seed(cls, seed: bytes) -> "Keypair":
        if type(seed) is not bytes or len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        public, secret = bindings.crypto_sign_seed_keypair(seed)
        return cls(seed, public, secret)

    @classmethod
    def generate(cls) -> "Keypair":
        return cls.from_seed(os.urandom(SEED_BYTES))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of `message`."""
        return _sign(message, self.secret)[:SIGNATURE_BYTES]

    def __repr__(self) -> str:  # never print the seed
        return f"Keypair(public={self.public.hex()})"


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `public`'s Ed25519 signature over `message`."""
    if len(public) != KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        _open(signature + message, public)
    except (BadSignatureError, ValueError):
        return False
    return True


def write_key_file(path: str | Path, keypair: Keypair) -> None:
    """Write the seed as 64 hex characters, mode 0600, refusing to overwrite a file."""
    write_secret_file(path, keypair.seed)


def write_secret_file(path: str | Path, secret: bytes) -> None:
    """Write `secret` as hex and a newline, mode 0600, refusing to overwrite a file (a
    validator or steward key, a research pseudonym key)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
    except OSError as error:
        raise KeyFileError(f"{path}: cannot create ({error.strerror})") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secret.hex() + "\n")
    os.chmod(path, 0o600)  # the umask may have taken bits away, never added: be exact


def read_key_file(path: str | Path) -> Keypair:
    """Read a key file written by `write_key_file` (or by hand in the same form)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"{path}: not a regular file")
    if mode & 0o077:
        raise KeyFileError(f"{path}: readable by others (mode {mode & 0o777:o}); "
                           f"run chmod 600 on it")
    if len(raw) > 256:
        raise KeyFileError(f"{path}: too large to be a key file")
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: not a key file (expected 64 hex characters)") from None
    if len(text) != 2 * SEED_BYTES or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise KeyFileError(f"{path}: not a key file (expected 64 hex characters, "
                           f"found {len(text)} characters)")
    return Keypair.from_seed(bytes.fromhex(text))
