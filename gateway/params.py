"""Query parameters: each handler names the ones it takes, and anything else is refused
with a clear 400, so a typo (`?stauts=open`) is never silently ignored. Paging is the
contract's everywhere: `limit` (default 100, at most 1,000) and an opaque `cursor`,
answered as `{"items": [...], "next": <cursor or null>}`."""
from __future__ import annotations

from aiohttp import web

from gateway.problems import Problem

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_POSITION = 10**18       # log positions and heights: far beyond any real ledger
PAGED = ("limit", "cursor")
ALWAYS = ("auth",)          # a read token may ride in the query string anywhere
_HEX = frozenset("0123456789abcdef")


def bad(detail: str) -> Problem:
    return Problem(400, "invalid_parameter", detail)


def query(request: web.Request, *allowed: str) -> dict[str, str]:
    """The query as a dict, refusing unknown and repeated parameters."""
    names = list(request.query.keys())
    unknown = sorted(set(names) - set(allowed) - set(ALWAYS))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise bad(f"Unknown parameter {unknown[0]!r}; this takes {takes}.")
    if len(request.query) != len(set(names)):
        raise bad("A parameter is given more than once.")
    return dict(request.query)


def integer(q: dict, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = q.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise bad(f"{name} is a whole number from {low} to {high}.")
    value = int(raw)
    if not low <= value <= high:
        raise bad(f"{name} is a whole number from {low} to {high}.")
    return value


def limit(q: dict) -> int:
    return integer(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


def position_cursor(q: dict, start_name: str | None = None) -> int:
    """A cursor that is a log position or height (decimal); `cursor` wins over the
    endpoint's own start parameter (`after`, `from`)."""
    start = integer(q, start_name, 0, 0, MAX_POSITION) if start_name is not None else 0
    if "cursor" in q:
        return integer(q, "cursor", 0, 0, MAX_POSITION)
    return start


def choice(q: dict, name: str, options: tuple[str, ...]) -> str | None:
    raw = q.get(name)
    if raw is not None and raw not in options:
        raise bad(f"{name} is one of {', '.join(options)}.")
    return raw


def key(text: str | None, name: str) -> bytes | None:
    """A 32-byte key in lowercase hex, or None when absent."""
    if text is None:
        return None
    if len(text) != 64 or not _HEX.issuperset(text):
        raise bad(f"{name} is a key: 64 lowercase hex characters.")
    return bytes.fromhex(text)


def ident(text: str | None, name: str) -> str | None:
    """A contract id: 1 to 64 of [A-Za-z0-9._-]."""
    if text is None:
        return None
    if not is_ident(text):
        raise bad(f"{name} is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'.")
    return text


def is_ident(text: str) -> bool:
    return 1 <= len(text) <= 64 and text.isascii() and \
        all(c.isalnum() or c in "._-" for c in text)


def page(items: list, next_cursor) -> web.Response:
    return web.json_response({"items": items,
                              "next": None if next_cursor is None else str(next_cursor)})
