"""The npm packages vendored for the browser tests are the versions tests/web/vendor/VERSIONS
pins, with their licences beside them."""
from __future__ import annotations

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
