"""The operator dashboard, `GET /`, and the static files it loads, `GET /web/{name}`: the
files of gateway/web/ (plain HTML, CSS and ES modules, no build step); the reference
wallet, `GET /app/`, and its files, `GET /app/{name}` (gateway/web/app/, its vendored
library in gateway/web/app/vendor/ as `vendor/{name}`). All are read once when the
application is made and served with their content type and a strict
Content-Security-Policy: scripts, styles and images from this origin only (no inline
script or style), connections to this origin and to the other gateways the page is asked
to watch (`?peers=`; the wallet connects to its own gateway only), nothing framed, no
forms sent anywhere. docs/api.md, "The dashboard" and "The wallet"."""
from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from gateway.appkeys import APP_PAGES, PAGES
from gateway.params import bad, query

WEB = Path(__file__).with_name("web")
APP = WEB / "app"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
         ".png": "image/png", ".ico": "image/x-icon"}
# an origin a browser sends: no path, a host of letters, digits, dots and dashes (or an
# IPv6 literal) and maybe a port; nothing that could end a CSP directive
ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?",
                    re.IGNORECASE)
MAX_PEERS = 64


def files(folder: Path = WEB) -> dict[str, tuple[bytes, str]]:
    """name -> (content, content type) of every file of `folder` with a known type."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in TYPES:
            found[path.name] = (path.read_bytes(), TYPES[path.suffix])
    return found


def app_files() -> dict[str, tuple[bytes, str]]:
    """The wallet's files: those of gateway/web/app/ by name, and those of its vendor/
    folder as `vendor/NAME`."""
    found = files(APP)
    if (APP / "vendor").is_dir():
        found.update({f"vendor/{name}": file
                      for name, file in files(APP / "vendor").items()})
    return found


def policy(connect: list[str]) -> str:
    """The Content-Security-Policy of a page that may fetch from `connect` too."""
    return "; ".join(("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "img-src 'self' data:", " ".join(["connect-src 'self'", *connect]),
                      "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"))


def peers(text: str | None) -> list[str]:
    """The origins of `?peers=` (comma-separated), each as a browser sends it."""
    if not text:
        return []
    found = [p.strip().rstrip("/") for p in text.split(",") if p.strip()]
    if len(found) > MAX_PEERS or not all(ORIGIN.fullmatch(p) for p in found):
        raise bad(f"peers is a comma-separated list of at most {MAX_PEERS} gateway "
                  "origins, each http(s)://host[:port] without a path.")
    return list(dict.fromkeys(p.lower() for p in found))


def _answer(body: bytes, content_type: str, connect: list[str]) -> web.Response:
    return web.Response(body=body, headers={
        "Content-Type": content_type, "Content-Security-Policy": policy(connect),
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache"})


async def get_dashboard(request: web.Request) -> web.Response:
    q = query(request, "peers")
    body, content_type = request.app[PAGES]["index.html"]
    return _answer(body, content_type, peers(q.get("peers")))


async def get_file(request: web.Request) -> web.Response:
    query(request)
    found = request.app[PAGES].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    return _answer(*found, [])


async def get_wallet(request: web.Request) -> web.Response:
    query(request)
    body, content_type = request.app[APP_PAGES]["index.html"]
    return _answer(body, content_type, [])


async def get_wallet_file(request: web.Request) -> web.Response:
    query(request)
    found = request.app[APP_PAGES].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    return _answer(*found, [])
