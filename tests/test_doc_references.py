"""Every document and source comment names only files and sections that exist: a user
reads only this repository, so a reference to a page that is not here, or to a section
that was renamed, is a dead end.

Checked in README.md, docs/*.md and every Python file of the packages and tests:
- a Markdown file named (`docs/api.md`, or a bare `api.md`) exists in the repository
  (docs/ or the top folder);
- a section named after it in quotes (`docs/api.md, "Conventions"`, `governance.md's
  "Who decides"`) is a heading of that file (its words, case and backticks aside);
- a source path named (`node/runtime.py`, `tests/sim/world.py`) exists.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("node", "consensus", "chaincode", "protocol", "gateway", "client", "ops",
            "tests")
DOC = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")
SECTION = re.compile(r"(?<![\w/.\"'-])((?:[\w-]+/)*[\w-]+\.md)(?:'s|,|:)?\s*\(?\"([^\"\n]{3,80})\"")
SOURCE = re.compile(r"(?<![\w/.-])((?:" + "|".join(PACKAGES) + r")/[\w/]+\.py)\b")


def texts() -> list[tuple[Path, str]]:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for package in PACKAGES:
        files += sorted(p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)
    return [(path, path.read_text(encoding="utf-8")) for path in files]


def doc_path(name: str) -> Path | None:
    for candidate in (REPO / name, REPO / "docs" / name):
        if candidate.is_file():
            return candidate
    return None


def words(text: str) -> str:
    return " ".join(re.sub(r"[`*]", "", text).lower().split())


def headings(path: Path) -> list[str]:
    return [words(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")]


def test_every_named_document_exists():
    missing = sorted({f"{path.relative_to(REPO)}: {name}" for path, text in texts()
                      for name in DOC.findall(text) if doc_path(name) is None})
    assert not missing, "\n".join(missing)


def test_every_named_section_is_a_heading_of_its_document():
    missing = []
    for path, text in texts():
        for name, section in SECTION.findall(text):
            found = doc_path(name)
            if found is not None and not any(words(section) in h for h in headings(found)):
                missing.append(f"{path.relative_to(REPO)}: {name} \"{section}\"")
    assert not missing, "\n".join(sorted(set(missing)))


def test_every_named_source_file_exists():
    missing = sorted({f"{path.relative_to(REPO)}: {name}" for path, text in texts()
                      for name in SOURCE.findall(text) if not (REPO / name).is_file()})
    assert not missing, "\n".join(missing)
