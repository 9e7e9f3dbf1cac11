"""The npm packages vendored for the browser tests are the versions tests/web/vendor/VERSIONS
pins, with their licences beside them; and the wallet's QR code library is the file
gateway/web/app/vendor/VERSIONS pins, with its licence."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENDOR = Path(__file__).resolve().parent / "vendor"


def pinned() -> dict[str, tuple[str, Path]]:
    found = {}
    for line in (VENDOR / "VERSIONS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version, folder, integrity = line.split()
            assert integrity.startswith("sha512-"), line
            found[name] = (version, REPO / folder)
    return found


def test_axe_core_is_the_pinned_version_with_its_licences():
    version, folder = pinned()["axe-core"]
    assert (folder / "axe.min.js").read_text()[:40].startswith(f"/*! axe v{version}\n")
    for licence in ("LICENSE", "LICENSE-3RD-PARTY.txt"):
        assert (folder / licence).stat().st_size > 1000, licence
    assert "Mozilla Public License" in (folder / "LICENSE").read_text()


def test_the_wallets_qr_code_library_is_the_pinned_file_with_its_licence():
    folder = REPO / "gateway" / "web" / "app" / "vendor"
    text = (folder / "VERSIONS").read_text()
    rows = [line.split() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]
    assert [row[:3] for row in rows] == [["qrcode-generator", "2.0.4",
                                          "gateway/web/app/vendor"]]
    assert rows[0][3].startswith("sha512-")
    pinned_sha256 = re.search(r"sha256 ([0-9a-f]{64})", text).group(1)
    code = (folder / "qrcode.js").read_bytes()
    assert hashlib.sha256(code).hexdigest() == pinned_sha256
    assert b"Copyright (c) 2009 Kazuhiko Arase" in code and b"export default qrcode" in code
    licence = (folder / "LICENSE").read_text()
    assert "MIT License" in licence and "Copyright (c) 2009 Kazuhiko Arase" in licence
