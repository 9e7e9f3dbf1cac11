"""A page served from another origin (a second port) reads the gateway's public API when
the gateway's `[gateway] cors_origins` lists that origin, and the browser refuses it the
answers when it does not: headless Chromium, one real validator, the page served by a
small server of the test's own on two ports, one allowed and one not."""
from __future__ import annotations

import json
import re
from pathlib import Path

from aiohttp import web
from playwright.async_api import expect

from browserkit import screenshot
from node.config import CONFIG_NAME
from tests.integration.netharness import Network, free_base_port, run_cli

PAGES = Path(__file__).resolve().parent / "pages"


async def page_html(_request) -> web.FileResponse:
    return web.FileResponse(PAGES / "cors.html")


async def page_js(_request) -> web.FileResponse:
    return web.FileResponse(PAGES / "cors.js", headers={"Content-Type": "text/javascript"})


async def serve_page(ports: list[int]) -> web.AppRunner:
    """The app's page and script on each port (each port its own origin)."""
    app = web.Application()
    app.router.add_get("/", page_html)
    app.router.add_get("/cors.js", page_js)
    runner = web.AppRunner(app)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_another_origin_reads_the_api_only_when_the_gateway_allows_it(tmp_path,
                                                                            browser):
    base = free_base_port(4)
    allowed, refused = f"http://127.0.0.1:{base + 2}", f"http://127.0.0.1:{base + 3}"
    root = tmp_path / "net"
    done = run_cli("network", "init", str(root), "--validators", "1", "--base-port",
                   str(base))
    assert done.returncode == 0, done.stderr
    settings = root / "municipality" / CONFIG_NAME
    settings.write_text(re.sub(r"(?m)^cors_origins = \[\]", f'cors_origins = ["{allowed}"]',
                               settings.read_text()))
    net = Network(root, 1, made=True)
    gateway = json.loads((root / "network.json").read_text())["validators"][0]["gateway"]
    runner = await serve_page([base + 2, base + 3])
    try:
        net.start_all()
        await net.wait_ready()
        for origin, expected in ((allowed, "read: chain heerlen-dev, height "),
                                 (refused, "refused: TypeError")):
            page = await browser.new_page()
            console = []
            page.on("console", lambda m, seen=console: seen.append(m.text))
            await page.goto(f"{origin}/?gateway={gateway}")
            await expect(page.locator("#result")).to_contain_text(expected, timeout=10_000)
            blocked = [m for m in console if "blocked by CORS policy" in m]
            assert bool(blocked) == (origin == refused), console
            await screenshot(page, f"cors-{'allowed' if origin == allowed else 'refused'}")
            await page.close()
    finally:
        await runner.cleanup()
        await net.close()
