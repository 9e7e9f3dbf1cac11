"""The operator dashboard (`GET /` on a gateway) in headless Chromium against four real
validators: it shows the four with a height that moves, the plots and blocks fill as
transactions commit, it satisfies its own Content-Security-Policy, axe-core finds nothing
serious or critical on a desktop or a phone-sized screen, the keyboard reaches it, and a
validator killed turns red, in words too, within seconds. Screenshots are kept in
test-artefacts/web/."""
from __future__ import annotations

import json
import time

import pytest
from playwright.async_api import expect

from browserkit import axe_violations, screenshot, until
from chaincode.periods import periods
from node import envelope
from node.keys import read_key_file
from ops.network import dashboard_url
from tests.integration.netharness import Load

RED_WITHIN_S = 5.0
# records what the page's CSP refused, before any script of the page runs
WATCH_CSP = """window.__refused = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__refused.push(e.violatedDirective + " " + e.blockedURI));"""


def url_of(net) -> str:
    return dashboard_url(json.loads((net.root / "network.json").read_text()))


async def open_dashboard(browser, net, **context):
    page = await (await browser.new_context(**context)).new_page()
    await page.add_init_script(WATCH_CSP)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    answer = await page.goto(url_of(net))
    assert answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    cards = page.locator("[data-validator]")
    await expect(cards).to_have_count(4, timeout=15_000)
    # answering: "ok", or "warn" with the validator's warnings (a cap policy missing)
    await expect(page.locator('[data-validator]:not([data-state="down"])')).to_have_count(
        4, timeout=15_000)
    return page, errors


async def heights(page) -> dict[str, int]:
    found = {}
    for card in await page.locator("[data-validator]").all():
        text = await card.locator('[data-field="height"]').inner_text()
        found[await card.get_attribute("data-validator")] = int(text) if text.isdigit() else -1
    return found


async def propose_next_years_policy(net) -> str:
    """The municipality's steward proposes next year's cap policy; it stays open (the
    network's constitution wants three organisations). Returns its id."""
    steward = read_key_file(net.root / "keys" / "steward-municipality.key")
    year = periods(time.time_ns() // 1_000_000)[0] + 1
    raw = envelope.sign_tx(steward, net.chain, "gov.propose", {
        "action": "policy.set", "expires": time.time_ns() // 1_000_000 + 86_400_000,
        "args": {"year": year, "hourly_cap_21plus": 600, "hourly_cap_under21": 400,
                 "monthly_cap": 22_000, "yearly_cap": 220_000}})
    answer = await net.post_tx("municipality", raw, 10)
    assert answer["status"] == "committed", answer
    return answer["tx_id"]


async def test_the_dashboard_shows_four_validators_and_a_height_that_moves(network,
                                                                           browser):
    await propose_next_years_policy(network)
    load = Load(network, clients=2)
    load.start()
    try:
        page, errors = await open_dashboard(browser, network,
                                            viewport={"width": 1280, "height": 900})
        assert set(await heights(page)) == set(network.names)
        first = await heights(page)
        await until("every validator's height to move on the page",
                    lambda: _moved(page, first), 20)
        await until("two rows of blocks and a line of transactions a second",
                    lambda: _filled(page), 20)
        await expect(page.locator("#summary")).to_contain_text("All 4 validators answer")
        await expect(page.locator("#rate-text")).to_contain_text("now ")
        await expect(page.locator("#latency-text")).to_contain_text("Median: now ")
        # the quantile of a histogram as Prometheus interpolates it, in the page's module
        assert await page.evaluate("""async () => (await import("/web/metrics.js"))
            .quantile(0.5, [[0.1, 2], [0.2, 6], [Infinity, 8]])""") == pytest.approx(0.15)
        await expect(page.locator("#policy-next")).to_contain_text(
            "no cap policy of its own yet")
        await expect(page.locator("#proposals")).to_contain_text(
            "policy.set by municipality: 1 of 3 approvals")
        assert await axe_violations(page) == []
        await screenshot(page, "dashboard")

        # the keyboard: the first Tab reaches the skip link, which moves the focus on
        await page.keyboard.press("Tab")
        await expect(page.locator(".skip")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("#validators-heading")).to_be_focused()
        await page.keyboard.press("Tab")
        await expect(page.locator("#peers-input")).to_be_focused()

        phone, phone_errors = await open_dashboard(
            browser, network, viewport={"width": 390, "height": 844},
            device_scale_factor=2, is_mobile=True, has_touch=True)
        assert await phone.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth"), \
            "the page scrolls sideways on a phone"
        assert await axe_violations(phone) == []
        await screenshot(phone, "dashboard-phone")
        for shown in (page, phone):
            assert await shown.evaluate("() => window.__refused") == []
        assert errors == [] and phone_errors == []
    finally:
        await load.stop()


async def _moved(page, first: dict[str, int]) -> bool:
    now = await heights(page)
    return all(now[name] > max(height, 0) for name, height in first.items())


async def _filled(page) -> bool:
    rows = await page.locator("#blocks li").count()
    line = page.locator("#rate-plot path.line")
    latency = page.locator("#latency-plot path.line")
    return rows >= 2 and await line.count() == 1 and await latency.count() == 2 and \
        (await line.get_attribute("d")).count("L") >= 5


async def test_a_validator_killed_turns_red_within_seconds(network, browser):
    page, _ = await open_dashboard(browser, network, viewport={"width": 1280, "height": 900})
    card = page.locator('[data-validator="vng"]')
    killed = time.monotonic()
    network.kill("vng")
    await expect(card).to_have_attribute("data-state", "down",
                                         timeout=RED_WITHIN_S * 1000)
    took = time.monotonic() - killed
    await expect(card.locator(".state")).to_contain_text("Not answering since")
    await expect(card.locator(".badge")).to_have_text("Not answering")
    await expect(page.locator("#summary")).to_contain_text("down or cut off: vng")
    await expect(page.locator('[data-validator="cbs"] .warnings')).to_contain_text(
        "validator vng is not connected")
    await expect(page.locator('[data-validator][data-state="down"]')).to_have_count(1)
    print(f"vng turned red {took:.1f} s after it was killed")
    await screenshot(page, "dashboard-validator-down")
