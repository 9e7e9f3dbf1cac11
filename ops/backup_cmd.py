"""`stadsmunt backup DIR OUT` and `stadsmunt restore BACKUP DIR` (docs/operators.md,
"5. Backup and restore").

`backup` copies a validator's ledger while the validator runs: it opens the store
read-only (as a gateway process does, node/readstore.py) and has LMDB write a compacted
copy from ONE read transaction (`Environment.copy(compact=True)`), so the copy is the
ledger as one commit left it, whatever the validator writes meanwhile. OUT is a folder
(mode 0700) with the copy `data.mdb` and `backup.json` (files 0600): the height and the
head hash in that very transaction, the genesis hash, the validator, the time, the tool's
version and the copy's SHA-256. It is assembled next to OUT and renamed into place once
checked, so a failed backup leaves no OUT.

`restore` puts a backup into a stopped validator's folder as its `data/`: refused while
a validator serves that folder, for a backup of another genesis, a damaged backup, or a
`data/` that holds anything (unless --force, which moves that `data/` aside). A backup of
another validator of the same chain is fine: its blocks are the same, and its consensus
table (the other validator's own votes) is left out. The restored validator fetches the
blocks after the backup's height from its peers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import stat
import struct
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import lmdb

from node import config as node_config, genesis as genesis_file, keys
from node.block import BlockRecord
from node.link import socket_path
from node.readstore import ReadOnlyStore
from node.store import FORMAT, MAP_SIZE, MAX_DBS, StoreError
from ops.errors import CheckFailed, UsageError

MANIFEST_NAME = "backup.json"
DATA_NAME = "data.mdb"
MANIFEST_FORMAT = 1
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")


def _settings(folder: Path) -> node_config.NodeConfig:
    try:
        return node_config.load(folder)
    except node_config.ConfigError as error:
        raise UsageError(str(error)) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tool_version() -> str:
    from ops.cli import version     # ops.cli imports this module: not at import time
    return f"stadsmunt {version()}"


def _staging(target: Path, what: str) -> Path:
    parent = target.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{parent} does not exist")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.{what}-", dir=parent))  # 0700
    except OSError as error:
        raise UsageError(f"cannot write in {parent}: {error.strerror}") from None


class Snapshot:
    """What a copy of a store holds, read from the copy itself (no lock file made)."""

    def __init__(self, path: Path):
        try:
            env = lmdb.open(str(path), readonly=True, lock=False, subdir=True,
                            max_dbs=MAX_DBS, map_size=MAP_SIZE, create=False)
        except lmdb.Error as error:
            raise CheckFailed(f"{path}: not an LMDB store ({error})") from None
        try:
            meta = env.open_db(b"meta", create=False)
            blocks = env.open_db(b"blocks", create=False)
            with env.begin() as txn:
                stored_format = txn.get(b"format", db=meta)
                self.genesis_bytes = txn.get(b"genesis", db=meta)
                head = txn.get(b"head", db=meta)
                self.height = _U64.unpack_from(head)[0] if head else None
                self.head = bytes(head[8:]) if head else None
                last = txn.get(_U64.pack(self.height), db=blocks) if self.height else None
                self.last_block = BlockRecord.decode(bytes(last)) if last else None
        except lmdb.Error as error:
            raise CheckFailed(f"{path}: not a Stadsmunt store ({error})") from None
        finally:
            env.close()
        self.format = _U16.unpack(stored_format)[0] if stored_format else None
        if self.genesis_bytes is None or head is None:
            raise CheckFailed(f"{path}: a store without a genesis")
        self.genesis_hash = hashlib.sha256(genesis_file.GENESIS_TAG
                                           + bytes(self.genesis_bytes)).digest()

    def check(self, path: Path) -> None:
        """The store is whole: of this Stadsmunt's format, its head block stored."""
        if self.format != FORMAT:
            raise CheckFailed(f"{path}: store format {self.format}, this Stadsmunt reads "
                              f"format {FORMAT}")
        if self.height and (self.last_block is None or self.last_block.hash != self.head):
            raise CheckFailed(f"{path}: the head block {self.height} is missing or does not "
                              f"have the head's hash")


def backup(folder: Path, out: Path) -> dict:
    """Copy the ledger of the validator in `folder` to the new folder `out`; returns the
    manifest."""
    settings = _settings(folder)
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out} exists; a backup is written to a new folder")
    if not (settings.data_dir / DATA_NAME).is_file():
        raise UsageError(f"{settings.data_dir} holds no ledger (no {DATA_NAME})")
    try:
        public = keys.read_key_file(settings.key_file).public.hex()
    except keys.KeyFileError:
        public = None
    staging = _staging(out, "backup")
    try:
        try:
            store = ReadOnlyStore(settings.data_dir)
        except StoreError as error:
            raise CheckFailed(str(error)) from None
        try:
            # one read transaction: the head read here is the head of the copy
            with store.env.begin() as txn:
                head = txn.get(b"head", db=store.db["meta"])
                if head is None:
                    raise CheckFailed(f"{settings.data_dir}: a store without a genesis")
                height, head_hash = _U64.unpack_from(head)[0], bytes(head[8:])
                store.env.copy(str(staging), compact=True, txn=txn)
        finally:
            store.close()
        copy = staging / DATA_NAME
        os.chmod(copy, 0o600)
        snapshot = Snapshot(staging)
        snapshot.check(copy)
        if (snapshot.height, snapshot.head) != (height, head_hash):
            raise CheckFailed(f"{copy}: the copy's head is not the head it was made at")
        manifest = {
            "kind": "stadsmunt-backup", "format": MANIFEST_FORMAT,
            "height": height, "head": head_hash.hex(),
            "genesis": snapshot.genesis_hash.hex(), "store_format": snapshot.format,
            "validator": settings.name, "validator_key": public,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tool": _tool_version(),
            "file": DATA_NAME, "bytes": copy.stat().st_size, "sha256": _sha256(copy)}
        fd = os.open(staging / MANIFEST_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(manifest, indent=2) + "\n")
        os.rename(staging, out)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, (OSError, lmdb.Error)):
            raise CheckFailed(f"backup of {settings.data_dir} failed: {error}") from None
        raise
    return manifest


def read_backup(folder: Path) -> tuple[dict, Snapshot]:
    """The manifest of the backup in `folder` and what its copy holds, checked against
    each other: a backup that does not hold what its manifest says is refused."""
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("kind") != "stadsmunt-backup":
            raise ValueError("not a Stadsmunt backup manifest")
        fields = (manifest["height"], manifest["head"], manifest["genesis"],
                  manifest["sha256"])
    except FileNotFoundError:
        raise UsageError(f"{folder} is not a backup (no {MANIFEST_NAME}; make one with "
                         f"`stadsmunt backup`)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError,
            AttributeError) as error:
        raise UsageError(f"{path} is not a backup manifest: {error}") from None
    copy = folder / DATA_NAME
    if not copy.is_file():
        raise CheckFailed(f"{folder}: the backup lacks {DATA_NAME}")
    if _sha256(copy) != fields[3]:
        raise CheckFailed(f"{copy}: damaged (its SHA-256 is not the manifest's)")
    snapshot = Snapshot(folder)
    snapshot.check(copy)
    if (snapshot.height, snapshot.head.hex(), snapshot.genesis_hash.hex()) != fields[:3]:
        raise CheckFailed(f"{folder}: the copy does not hold the height, head or genesis "
                          f"its manifest names")
    return manifest, snapshot


def _answers(host: str, port: int) -> bool:
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _running(settings: node_config.NodeConfig) -> str | None:
    """Why it looks as if a validator runs from this folder, or None."""
    sock = socket_path(settings)
    if sock.exists() and stat.S_ISSOCK(sock.lstat().st_mode):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(sock))
            return f"a validator answers on {sock}"
        except OSError:
            pass
        finally:
            probe.close()
    host, port = settings.peer_listen
    if _answers(host, port):
        return f"something answers on its peer port {host}:{port}"
    return None


def restore(backup_folder: Path, folder: Path, force: bool = False) -> dict:
    """Put the backup in `backup_folder` into the validator folder `folder` as its data/;
    returns {"manifest", "moved_aside", "consensus_dropped"}."""
    settings = _settings(folder)
    manifest, snapshot = read_backup(backup_folder)
    try:
        genesis = genesis_file.load(settings.genesis_file)
    except genesis_file.GenesisError as error:
        raise UsageError(f"{settings.genesis_file}: {error}") from None
    if snapshot.genesis_hash != genesis.hash():
        raise UsageError(f"{backup_folder} is a backup of another chain: its genesis is "
                         f"{snapshot.genesis_hash.hex()}, {settings.genesis_file}'s is "
                         f"{genesis.hash().hex()}")
    busy = _running(settings)
    if busy:
        raise UsageError(f"{folder}: {busy}; stop the validator before restoring")
    data = settings.data_dir
    occupied = data.exists() and (not data.is_dir() or any(data.iterdir()))
    if occupied and not force:
        raise UsageError(f"{data} exists and is not empty; restore replaces it only with "
                         f"--force (which moves it aside)")
    try:
        own = keys.read_key_file(settings.key_file).public.hex()
    except keys.KeyFileError:
        own = None
    # the consensus table holds the backed-up validator's own votes, view and new-view:
    # they belong to it alone, so another validator starts without them (as from an
    # empty folder: it learns the view from its peers)
    drop_consensus = own is None or own != manifest.get("validator_key")
    staging = _staging(data, "restore")
    moved = None
    try:
        target = staging / DATA_NAME
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle, open(backup_folder / DATA_NAME, "rb") as source:
            shutil.copyfileobj(source, handle, 1 << 20)
            handle.flush()
            os.fsync(handle.fileno())
        if _sha256(target) != manifest["sha256"]:
            raise CheckFailed(f"{target}: the copy differs from the backup")
        if drop_consensus:
            env = lmdb.open(str(staging), map_size=MAP_SIZE, max_dbs=MAX_DBS, subdir=True,
                            lock=False, mode=0o600)
            try:
                with env.begin(write=True) as txn:
                    txn.drop(env.open_db(b"consensus", txn=txn, create=False), delete=False)
            finally:
                env.close()
        for path in staging.iterdir():
            os.chmod(path, 0o600)
        if occupied:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            moved = data.with_name(f"{data.name}.before-restore-{stamp}")
            os.rename(data, moved)
        os.rename(staging, data)    # replaces an empty data/
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if moved is not None and not data.exists():
            os.rename(moved, data)
            moved = None
        if isinstance(error, (OSError, lmdb.Error)):
            raise CheckFailed(f"restore into {data} failed: {error}") from None
        raise
    return {"manifest": manifest, "moved_aside": moved, "consensus_dropped": drop_consensus}


def run_backup(args: argparse.Namespace) -> int:
    manifest = backup(Path(args.dir), Path(args.out))
    print(f"backed up {args.dir} at height {manifest['height']} (head {manifest['head']}) "
          f"to {args.out}: {manifest['bytes']} bytes")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    done = restore(Path(args.backup), Path(args.dir), args.force)
    manifest = done["manifest"]
    if done["moved_aside"] is not None:
        print(f"moved the data folder that was there aside to {done['moved_aside']} "
              f"(delete it once the validator runs)")
    print(f"restored the backup of {manifest['validator']} at height {manifest['height']} "
          f"into {args.dir}; at start the validator fetches the blocks after it from its "
          f"peers")
    return 0


def register(commands) -> None:
    backup_parser = commands.add_parser(
        "backup", help="copy a validator's ledger while it runs (a consistent snapshot)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n"
               "  stadsmunt backup /srv/stadsmunt/validator /backup/stadsmunt-2025-03-01")
    backup_parser.add_argument("dir", help="the validator's folder (holds node.toml)")
    backup_parser.add_argument("out", help="the backup folder to make (must not exist)")
    backup_parser.set_defaults(run=run_backup)
    restore_parser = commands.add_parser(
        "restore", help="put a backup into a stopped validator's folder as its data/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n"
               "  stadsmunt restore /backup/stadsmunt-2025-03-01 /srv/stadsmunt/validator")
    restore_parser.add_argument("backup", help="a folder made by `stadsmunt backup`")
    restore_parser.add_argument("dir", help="the validator's folder (holds node.toml)")
    restore_parser.add_argument("--force", action="store_true",
                                help="replace a data/ that is not empty (it is moved aside)")
    restore_parser.set_defaults(run=run_restore)
