"""Where an audit reads a chain from: a validator's folder (read-only, straight from its
LMDB store), an export file, or a gateway URL (GET /v1/status and /v1/blocks?from=H, with
a read token when a key is given).

Each source gives its genesis (the canonical bytes; a gateway's must hash to what its
status claims) and its blocks in order as `SourceBlock`s. Nothing here checks a block: the
auditor trusts no source. Problems reaching a source are `Unreachable` (exit 2); a source
that answers with something that does not parse is `Broken` at a height (exit 1).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import lmdb

from node.history import HISTORY as HISTORY_KEY
from node.block import BlockRecord
from chaincode.results import expand_result
from node.config import CONFIG_NAME, ConfigError, load as load_config
from node.export import ExportError, ExportReader, SourceBlock
from node.genesis import GENESIS_TAG, Genesis, GenesisError
from node.genesis import from_map as genesis_from_map
from node.keys import Keypair
from node.store import decode_checkpoint
from protocol import codec
from protocol.token import make_token

_U64 = struct.Struct(">Q")
PAGE = 100                  # blocks asked of a gateway at once
HTTP_TIMEOUT_S = 30
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class Unreachable(Exception):
    """The source cannot be opened or reached: bad usage or the network (exit 2)."""


class Broken(Exception):
    """The source answered with something that does not parse (exit 1)."""

    def __init__(self, height: int, reason: str):
        super().__init__(reason)
        self.height = height
        self.reason = reason


def genesis_from_canonical(data: bytes) -> Genesis:
    """The Genesis of its canonical msgpack bytes (docs/protocol.md, "Genesis"); refuses
    bytes that are not exactly the canonical form, so the hash is the one computed."""
    try:
        genesis = genesis_from_map(codec.unpack(data, 1 << 20))
    except (codec.CodecError, GenesisError, TypeError, KeyError) as error:
        raise Broken(0, f"the genesis does not parse: {error}") from None
    if genesis.canonical() != data:
        raise Broken(0, "the genesis bytes are not in canonical form")
    return genesis


def incomplete(name: str, below: int) -> str:
    return (f"{name}: this validator loaded its state by state sync and is still fetching "
            f"the blocks up to height {below} (its status shows `history`); read the log "
            f"from another validator, or from this one once its history is complete")


class FolderSource:
    """A validator's LMDB store, opened read-only: the validator may keep running."""

    def __init__(self, path: Path, name: str):
        self.name = name
        try:
            self.env = lmdb.open(str(path), readonly=True, max_dbs=16, subdir=True,
                                 lock=True, readahead=False)
        except lmdb.Error:
            try:   # no write access to the lock file: read without the lock
                self.env = lmdb.open(str(path), readonly=True, max_dbs=16, subdir=True,
                                     lock=False, readahead=False)
            except lmdb.Error as error:
                raise Unreachable(f"{name}: cannot open the store ({error})") from None
        try:
            self.db = {n: self.env.open_db(n.encode(), create=False)
                       for n in ("meta", "blocks", "checkpoints", "results")}
            with self.env.begin(db=self.db["meta"]) as txn:
                self.genesis_bytes = txn.get(b"genesis")
                head = txn.get(b"head")
                missing = txn.get(HISTORY_KEY)
        except lmdb.Error as error:
            self.env.close()
            raise Broken(0, f"{name}: not a Stadsmunt store ({error})") from None
        if self.genesis_bytes is None or head is None or len(head) != 40:
            self.env.close()
            raise Broken(0, f"{name}: the store has no genesis")
        self.head_height = _U64.unpack_from(head)[0]
        if missing is not None:
            self.env.close()
            raise Unreachable(incomplete(name, _U64.unpack_from(missing, 8)[0]))

    def blocks(self) -> Iterator[SourceBlock]:
        height = 0
        while True:
            page = self._page(height + 1)
            if not page:
                return
            for block in page:
                height = block.height
                yield block

    def _page(self, start: int) -> list[SourceBlock]:
        # one short read transaction per page, so a running validator's file does not grow
        out = []
        with self.env.begin() as txn:
            cursor = txn.cursor(self.db["blocks"])
            if not cursor.set_range(_U64.pack(start)):
                return out
            for key, raw in cursor:
                if len(out) >= PAGE:
                    break
                try:
                    record = BlockRecord.decode(raw)
                    checkpoint = txn.get(key, db=self.db["checkpoints"])
                    if checkpoint is not None:
                        checkpoint = decode_checkpoint(checkpoint)
                except (codec.CodecError, ValueError, TypeError) as error:
                    raise Broken(start + len(out), f"{self.name}: a stored block does not "
                                                   f"decode ({error})") from None
                results = []
                rc = txn.cursor(self.db["results"])
                if rc.set_range(key):
                    for rkey, value in rc:
                        if not rkey.startswith(key):
                            break
                        results.append(expand_result(value))
                out.append(SourceBlock(record.height, record.view, record.time_ms,
                                       record.prev_hash, record.batch_digest,
                                       record.results_root, record.state_root, record.hash,
                                       record.envelopes, record.certificate, tuple(results),
                                       checkpoint))
        return out

    def close(self) -> None:
        self.env.close()


class FileSource:
    """An export file, read as a stream."""

    def __init__(self, path: Path, name: str):
        self.name = name
        try:
            self.stream = open(path, "rb")
        except OSError as error:
            raise Unreachable(f"{name}: cannot open ({error.strerror})") from None
        try:
            self.reader = ExportReader(self.stream)
        except ExportError as error:
            self.stream.close()
            raise Broken(error.height, f"{name}: {error.reason}") from None
        self.genesis_bytes = self.reader.genesis_bytes
        self.head_height = None

    def blocks(self) -> Iterator[SourceBlock]:
        try:
            yield from self.reader.blocks()
        except ExportError as error:
            raise Broken(error.height, f"{self.name}: {error.reason}") from None

    def close(self) -> None:
        self.stream.close()


class GatewaySource:
    """A gateway's HTTP API: /v1/status, /v1/genesis (the canonical genesis bytes, which
    must hash to what the status claims) and /v1/blocks page by page."""

    def __init__(self, url: str, key: Keypair | None):
        self.name = url
        self.url = url.rstrip("/")
        self.key = key
        self.chain = ""
        self._token: tuple[float, str] | None = None
        status = self._get("/v1/status", 0)
        try:
            self.chain = status["chain"]
            self.claimed_genesis_hash = bytes.fromhex(status["genesis"])
            self.head_height = int(status["height"])
        except (KeyError, TypeError, ValueError) as error:
            raise Broken(0, f"{url}: /v1/status does not answer chain, genesis and height "
                            f"({error})") from None
        history = status.get("history")
        if type(history) is dict and type(history.get("missing")) is list and \
                len(history["missing"]) == 2:
            raise Unreachable(incomplete(self.url, history["missing"][1]))
        self.genesis_bytes = self._genesis()

    def _genesis(self) -> bytes:
        served = self._get("/v1/genesis", 0)
        try:
            data = base64.b64decode(served["canonical"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise Broken(0, f"{self.url}: /v1/genesis does not answer the canonical "
                            f"genesis bytes") from None
        if hashlib.sha256(GENESIS_TAG + data).digest() != self.claimed_genesis_hash:
            raise Broken(0, f"{self.url}: the genesis it serves does not have the hash its "
                            f"/v1/status claims")
        return data

    def close(self) -> None:
        """Nothing held open: every request has its own connection."""

    def _token_header(self) -> dict:
        if self.key is None or not self.chain:
            return {}
        now = time.time()
        if self._token is None or now - self._token[0] > 120:   # tokens live 5 minutes
            self._token = (now, make_token(self.key, self.chain, int(now * 1000)))
        return {"Authorization": f"Stadsmunt {self._token[1]}"}

    def _get(self, path: str, height: int):
        request = urllib.request.Request(self.url + path, headers={
            "Accept": "application/json", **self._token_header()})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            if error.code == 401 and self.key is None:
                raise Unreachable(f"{self.url}: reading the log from a gateway needs a staff "
                                  f"or auditor key (--key FILE), because the log holds "
                                  f"personal data") from None
            raise Unreachable(f"{self.url}{path}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise Unreachable(f"{self.url}: cannot be reached ({error})") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise Broken(height, f"{self.url}{path}: answer larger than allowed")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Broken(height, f"{self.url}{path}: the answer is not JSON") from None

    def blocks(self) -> Iterator[SourceBlock]:
        height = 0
        while True:
            page = self._get(f"/v1/blocks?from={height + 1}&limit={PAGE}", height + 1)
            items = page.get("items") if type(page) is dict else page
            if type(items) is not list:
                raise Broken(height + 1, f"{self.url}: /v1/blocks does not answer a list")
            if not items:
                return
            for item in items:
                block = block_from_json(item, height + 1, self.url)
                height = block.height
                yield block


def _hex32(value) -> bytes:
    raw = bytes.fromhex(value)
    if len(raw) != 32:
        raise ValueError("a hash is 32 bytes")
    return raw


def _certificate_json(value) -> tuple[tuple[int, bytes], ...]:
    signatures = value.get("signatures") if type(value) is dict else value
    out = []
    for entry in signatures:
        if type(entry) is dict:
            out.append((entry["validator"], bytes.fromhex(entry["signature"])))
        else:
            index, signature = entry
            out.append((index, bytes.fromhex(signature)))
    return tuple(out)


def block_from_json(item, height: int, name: str) -> SourceBlock:
    """A block of GET /v1/blocks (docs/api.md): hex hashes, base64 envelopes."""
    try:
        results = item.get("results")
        # results are hashed as their canonical bytes; a gateway that gives them as base64
        # bytes is compared result by result, JSON results only through the results root
        encoded = (tuple(base64.b64decode(r, validate=True) for r in results)
                   if type(results) is list and all(type(r) is str for r in results) else None)
        checkpoint = item.get("checkpoint")
        if checkpoint is not None:
            checkpoint = (_hex32(checkpoint.get("hash") or checkpoint["block_hash"]),
                          _certificate_json(checkpoint.get("certificate", checkpoint)),
                          _hex32(checkpoint["set_hash"]))
        return SourceBlock(
            int(item["height"]), int(item["view"]), int(item["time"]),
            _hex32(item["prev_hash"]), _hex32(item["batch_digest"]),
            _hex32(item["results_root"]), _hex32(item["state_root"]), _hex32(item["hash"]),
            tuple(base64.b64decode(t, validate=True) for t in item["txs"]),
            _certificate_json(item["certificate"]), encoded, checkpoint,
            tuple(results) if type(results) is list and encoded is None else None)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as error:
        raise Broken(height, f"{name}: block {height} does not parse ({error})") from None


def open_source(text: str, key: Keypair | None):
    """A source from a command-line argument: URL, export file or validator folder."""
    if text.startswith(("http://", "https://")):
        return GatewaySource(text, key)
    path = Path(text)
    if path.is_file():
        return FileSource(path, text)
    if not path.is_dir():
        raise Unreachable(f"{text}: no such file, folder or URL")
    if (path / CONFIG_NAME).is_file():
        try:
            path = load_config(path).data_dir
        except ConfigError as error:
            raise Unreachable(f"{text}: {error}") from None
    elif not (path / "data.mdb").is_file() and (path / "data" / "data.mdb").is_file():
        path = path / "data"
    if not (path / "data.mdb").is_file():
        raise Unreachable(f"{text}: neither a validator folder, its data folder nor an "
                          f"export file")
    return FolderSource(path, text)
