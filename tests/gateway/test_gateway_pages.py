"""The operator dashboard's files (gateway/pages.py): `GET /` and every file it loads come
with their content type, `nosniff` and a strict Content-Security-Policy that the page
keeps (no inline script or style, no handler attributes); `?peers=` adds exactly those
origins to connect-src and refuses anything that is not an origin; other names are 404.
The reference wallet's files the same way: `GET /app/` and every file it loads, its
vendored QR code library as `vendor/qrcode.js`, no parameters (a payment request
travels in the fragment, which no server sees). And `GET /v1/policies/{year}`, which
tells the dashboard whether a year has a cap policy of its own."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from chaincode.periods import periods
from gateway.pages import APP, WEB
from gateway_kit import now_ms, policy

TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css",
         "svg": "image/svg+xml"}


def directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in csp.split("; ")}


class Tags(HTMLParser):
    """The page's tags and attributes, and any text inside a <script> or <style>."""

    def __init__(self):
        super().__init__()
        self.tags, self.inline, self._open = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = tag

    def handle_data(self, data):
        if self._open in ("script", "style") and data.strip():
            self.inline.append(self._open)

    def handle_endtag(self, tag):
        self._open = None


async def test_the_dashboard_has_its_type_and_a_strict_csp_that_it_keeps(client):
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = directives(response.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == csp["style-src"] == csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == csp["base-uri"] == ["'none'"]
    page = Tags()
    page.feed(await response.text())
    assert page.inline == []
    for tag, attrs in page.tags:
        assert "style" not in attrs and not any(a.startswith("on") for a in attrs), tag
        if tag == "script":
            assert attrs["src"].startswith("/web/") and attrs["type"] == "module"


async def test_every_file_the_page_loads_is_served_with_its_type(client):
    page = (WEB / "index.html").read_text()
    names = set(re.findall(r'(?:src|href)="/web/([^"]+)"', page))
    for module in WEB.glob("*.js"):
        names |= set(re.findall(r'from "\./([^"]+)"', module.read_text()))
    assert {"dashboard.js", "dashboard.css", "plot.js", "metrics.js", "view.js"} <= names
    for name in sorted(names):
        response = await client.get(f"/web/{name}")
        assert response.status == 200, name
        assert response.headers["Content-Type"].split(";")[0] == TYPES[name.split(".")[-1]]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert await response.read() == (WEB / name).read_bytes()


@pytest.mark.parametrize("path", ["/web/nothing.js", "/web/..%2Fpages.py", "/web/",
                                  "/web/pages.py", "/index.html"])
async def test_nothing_else_is_served(client, path):
    response = await client.get(path)
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")


async def test_the_wallet_has_the_same_strict_csp_and_keeps_it(client):
    response = await client.get("/app/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = directives(response.headers["Content-Security-Policy"])
    assert csp["script-src"] == csp["style-src"] == csp["connect-src"] == ["'self'"]
    assert csp["default-src"] == csp["frame-ancestors"] == ["'none'"]
    page = Tags()
    page.feed(await response.text())
    assert page.inline == []
    for tag, attrs in page.tags:
        assert "style" not in attrs and not any(a.startswith("on") for a in attrs), tag
        if tag == "script":
            assert attrs["src"].startswith("/app/") and attrs["type"] == "module"
    assert (await client.get("/app/", params={"pay": "00"})).status == 400


async def test_every_file_the_wallet_loads_is_served_with_its_type(client):
    page = (APP / "index.html").read_text()
    names = set(re.findall(r'(?:src|href)="/app/([^"]+)"', page))
    for module in APP.glob("*.js"):
        names |= set(re.findall(r'from "\./([^"]+)"', module.read_text()))
    assert {"wallet.js", "wallet.css", "codec.js", "keys.js", "i18n.js",
            "vendor/qrcode.js"} <= names
    for name in sorted(names):
        response = await client.get(f"/app/{name}")
        assert response.status == 200, name
        assert response.headers["Content-Type"].split(";")[0] == TYPES[name.split(".")[-1]]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert await response.read() == (APP / name).read_bytes()


@pytest.mark.parametrize("path", ["/app/nothing.js", "/app/..%2Fpages.py", "/app",
                                  "/app/vendor/LICENSE", "/app/vendor/VERSIONS",
                                  "/app/vendor/nothing.js", "/web/app", "/app/a/b/c.js"])
async def test_nothing_else_of_the_wallet_is_served(client, path):
    response = await client.get(path)
    assert response.status == 404


async def test_peers_are_added_to_connect_src_and_nothing_else(client):
    response = await client.get("/", params={
        "peers": "http://127.0.0.1:7103, https://CBS.example/,https://cbs.example"})
    assert response.status == 200
    csp = directives(response.headers["Content-Security-Policy"])
    assert csp["connect-src"] == ["'self'", "http://127.0.0.1:7103", "https://cbs.example"]
    assert csp["script-src"] == ["'self'"]


@pytest.mark.parametrize("peers", ["127.0.0.1:7103", "http://a.example/v1",
                                   "http://a.example; script-src *", "javascript:alert(1)",
                                   "https://user@a.example", ",".join(["http://a"] * 65)])
async def test_peers_that_are_not_origins_are_refused(client, peers):
    response = await client.get("/", params={"peers": peers})
    assert response.status == 400
    assert (await response.json())["code"] == "invalid_parameter"
    assert "Content-Security-Policy" not in response.headers


async def test_an_unknown_parameter_is_refused(client):
    response = await client.get("/", params={"peer": "http://a.example"})
    assert response.status == 400


async def test_a_year_has_its_own_cap_policy_or_an_earlier_one_carries_over(chain):
    year = periods(now_ms())[0]
    this = await chain.get(f"/v1/policies/{year}")
    assert this["year"] == year and this["own"] is True and this["policy"]["year"] == year
    assert this["policy"]["monthly_cap"] > 0
    coming = await chain.get(f"/v1/policies/{year + 1}")
    assert coming["own"] is False and coming["policy"] == this["policy"]
    await chain.govern("policy.set", policy(1, monthly=12_300))
    coming = await chain.get(f"/v1/policies/{year + 1}")
    assert coming["own"] is True and coming["policy"]["monthly_cap"] == 12_300
    assert (await chain.get(f"/v1/policies/{year}"))["policy"] == this["policy"]
    assert (await chain.get("/v1/policies/2000", expect=404))["code"] == "not_found"
    for wrong in ("1999", "abcd", "02026", "10000"):
        assert (await chain.get(f"/v1/policies/{wrong}", expect=404))["code"] == "not_found"
