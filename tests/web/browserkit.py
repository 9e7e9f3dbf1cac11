"""Headless Chromium for the browser tests: Debian's package, installed on first use,
driven by Playwright (its Python package from the test extra, never `playwright install`:
it is told where the browser is).

`ensure_chromium` installs Debian's `chromium` when /usr/bin/chromium is missing (as root,
with apt-get: what a fresh CI machine needs) and fails with what to do otherwise.
Screenshots go to test-artefacts/web/ at the top of the checkout (ignored by git)."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = REPO / "test-artefacts" / "web"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
# what Chromium needs to run as root in a container and to stay off the network; the
# profile is a fresh temporary folder of Playwright's own for every launch
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_TIMEOUT_S = 900
POLL_S = 0.05
TAKEN: list[Path] = []      # the screenshots of this run


class NoBrowser(Exception):
    """Chromium is missing and cannot be installed here."""


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed from Debian's packages first if it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise NoBrowser(f"{CHROMIUM} is missing and this is not root on a Debian system: "
                        "install Debian's package yourself (apt-get install chromium) "
                        "and run the tests again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                     "chromium", "fonts-dejavu-core"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            raise NoBrowser(f"{' '.join(command)} failed ({done.returncode}):\n"
                            + (done.stdout + done.stderr)[-2000:])
    if not CHROMIUM.exists():
        raise NoBrowser(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


async def until(what: str, check, timeout_s: float):
    """Polls the coroutine `check()` until it returns a true value, which it returns."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s: {what}"
        await asyncio.sleep(POLL_S)


async def screenshot(page, name: str) -> Path:
    """A full-page PNG in test-artefacts/web/, named NAME.png; its path is printed."""
    path = artefacts() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    TAKEN.append(path)
    return path


async def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of these impacts on the page as it is now. The script is
    evaluated by the driver, not added as a <script>: the page's CSP allows no inline
    script, and that must stay true for the page's own code."""
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    found = await page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
    }""")
    return [v for v in found if v["impact"] in impacts]


if __name__ == "__main__":      # python tests/web/browserkit.py: install it now
    print(ensure_chromium())
