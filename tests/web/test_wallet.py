"""The reference wallet (`GET /app/` on a gateway) in headless Chromium against four real
validators. A citizen makes a key in the page, an admin registers it from Python (as
docs/api.md says members are registered), the citizen claims a task and submits the
SHA-256 of a photo chosen in the page, an admin approves it from Python, and the balance
and the room under the caps change on the page by themselves (the account's event
stream, with ?auth=); a claim over the monthly cap shows the chain's own sentence, in
Dutch and, after the switch, in English. A merchant shows a payment request as a QR code
and a link, a citizen pays it from a second browser context, the payment arrives live,
the merchant refunds it and redeems another. axe-core finds nothing serious or critical,
on a desktop or a phone-sized screen; the keyboard reaches the page; its CSP holds.
Screenshots in test-artefacts/web/."""
from __future__ import annotations

import hashlib
import re
import time

from playwright.async_api import expect

from browserkit import axe_violations, screenshot
from chaincode.describe import describe
from client import Client
from node.keys import Keypair

PHOTO = b"\x89PNG\r\n\x1a\n" + b"a photo of a clean park" * 40
SEED_ITEM = "stadsmunt.wallet.seed"
WATCH_CSP = """window.__refused = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__refused.push(e.violatedDirective + " " + e.blockedURI));"""
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def wallet_url(net) -> str:
    return f"{net.gateways[net.names[0]]}/app/"


async def open_wallet(browser, net, **context):
    """The wallet in a fresh browser context (no key kept yet)."""
    page = await (await browser.new_context(**context)).new_page()
    await page.add_init_script(WATCH_CSP)
    errors = []
    # a key not registered yet reads its account as a 404, which Chromium logs
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and
            "404" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    answer = await page.goto(wallet_url(net))
    assert answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    await expect(page.locator("body[data-ready]")).to_have_count(1, timeout=15_000)
    return page, errors


async def new_key(page) -> tuple[bytes, str]:
    """Makes a key in the page; its public key (as the page shows it) and seed."""
    await page.get_by_role("button", name="Maak mijn sleutel").click()
    await expect(page.locator("#public-key")).to_have_text(re.compile("^[0-9a-f]{64}$"))
    public = bytes.fromhex(await page.locator("#public-key").inner_text())
    seed = await page.evaluate(f"() => localStorage.getItem('{SEED_ITEM}')")
    assert Keypair.from_seed(bytes.fromhex(seed)).public == public
    return public, seed


async def admin_sends(net, kind: str, args: dict) -> dict:
    async with Client(net.gateways[net.names[1]], net.admin, chain=net.chain) as admin:
        return await admin.send(kind, args)


async def test_a_citizen_makes_a_key_claims_submits_and_is_paid_live(network, browser):
    net = network
    deadline = now_ms() + 86_400_000
    await admin_sends(net, "task.post", {
        "task": "park-centrum", "title": "Het park opruimen", "area": "centrum",
        "domain": "groen", "reward": 500, "minutes": 60, "slots": 3, "deadline": deadline})
    await admin_sends(net, "task.post", {
        "task": "week-noord", "title": "Een week de buurtkamer", "area": "noord",
        "domain": "zorg", "reward": 30_000, "minutes": 10_080, "slots": 1,
        "deadline": deadline})

    page, errors = await open_wallet(browser, net, viewport={"width": 1280, "height": 900})
    await expect(page.locator("html")).to_have_attribute("lang", "nl")
    public, seed = await new_key(page)
    await expect(page.locator("#not-member")).to_be_visible()
    await page.get_by_role("button", name="Herstelblad tonen").click()
    await expect(page.locator("#sheet-seed")).to_have_text(seed)
    await expect(page.locator("#sheet-public")).to_have_text(public.hex())
    await screenshot(page, "wallet-recovery-sheet")
    await page.emulate_media(media="print")         # printing shows the sheet alone
    await expect(page.locator("#sheet-seed")).to_be_visible()
    for other in ("header", "#key-section", "#print"):
        await expect(page.locator(other)).to_be_hidden()
    await page.emulate_media(media="screen")
    await page.get_by_role("button", name="Herstelblad verbergen").click()

    await admin_sends(net, "member.register", {"key": public, "role": "citizen",
                                               "age_band": "21plus", "area": "centrum"})
    await expect(page.locator("#role")).to_have_text("inwoner", timeout=10_000)
    await expect(page.locator("#balance")).to_contain_text("0,00")
    month_before = await page.locator("#month-room").inner_text()
    await expect(page.locator("#tasks h3")).to_have_text(["Wijk: centrum", "Wijk: noord"])

    park = page.locator('[data-task="park-centrum"]')
    await park.get_by_role("button", name="Aannemen").click()
    await expect(park.locator(".state")).to_have_attribute("data-state", "open")
    await expect(page.locator("#month-room")).not_to_have_text(month_before)
    await park.get_by_label("Foto als bewijs").set_input_files(
        files=[{"name": "park.png", "mimeType": "image/png", "buffer": PHOTO}])
    await park.get_by_role("button", name="Bewijs insturen").click()
    await expect(park.locator(".state")).to_have_attribute("data-state", "submitted")
    async with Client(net.gateways[net.names[2]], net.admin, chain=net.chain) as admin:
        claims = (await admin.task("park-centrum"))["claims"]
    assert claims == [{"citizen": public.hex(), "state": "submitted",
                       "proof": hashlib.sha256(PHOTO).hexdigest()}]

    # approved from Python; the page learns it from its event stream
    await admin_sends(net, "task.approve", {"task": "park-centrum", "citizen": public})
    await expect(page.locator("#balance")).to_have_text(re.compile(r"^5,00\b"))
    await expect(park.locator(".state")).to_have_attribute("data-state", "approved")
    await expect(page.locator("#month-room")).to_contain_text("215,00")
    await expect(page.locator("#year-room")).to_contain_text("2.195,00")

    # over the monthly cap: the chain's sentence, in the chosen language
    week = page.locator('[data-task="week-noord"]')
    await week.get_by_role("button", name="Aannemen").click()
    await expect(page.locator("#message")).to_contain_text(
        re.compile(r"^Hiermee komt u boven de maandgrens .* nog 215,00 "))
    await page.get_by_label("Taal", exact=True).select_option("en")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await week.get_by_role("button", name="Claim").click()
    await expect(page.locator("#message")).to_contain_text(
        re.compile(r"^This would take you over the monthly limit .* still earn 215\.00 "))
    await expect(page.locator("#balance")).to_have_text(re.compile(r"^5\.00\b"))
    assert await axe_violations(page) == []
    await screenshot(page, "wallet-citizen")

    # the keyboard, on the page as it opens: the skip link first, then the content,
    # where Enter opens the recovery sheet; the language chosen is kept
    await page.reload()
    await expect(page.locator("#role")).to_have_text("citizen", timeout=10_000)
    await page.keyboard.press("Tab")
    await expect(page.locator(".skip")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#main")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#toggle-sheet")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#sheet")).to_be_visible()
    await expect(page.locator("#toggle-sheet")).to_have_attribute("aria-expanded", "true")

    # the same key on a phone, restored from the recovery sheet's seed
    phone, phone_errors = await open_wallet(browser, net, **PHONE)
    restore = phone.get_by_label("Of zet een sleutel terug")
    await restore.fill("not a seed")
    await phone.get_by_role("button", name="Terugzetten").click()
    await expect(phone.locator("#message")).to_contain_text("Dat is geen geheim zaadje")
    await restore.fill(seed)
    await phone.get_by_role("button", name="Terugzetten").click()
    await expect(phone.locator("#public-key")).to_have_text(public.hex())
    await expect(phone.locator("#role")).to_have_text("inwoner", timeout=10_000)
    await expect(phone.locator('[data-task="park-centrum"] .state')).to_have_attribute(
        "data-state", "approved")
    assert await phone.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"), \
        "the wallet scrolls sideways on a phone"
    assert await axe_violations(phone) == []
    await screenshot(phone, "wallet-citizen-phone")
    for shown in (page, phone):
        assert await shown.evaluate("() => window.__refused") == []
    assert errors == [] and phone_errors == []


async def test_a_merchant_is_paid_from_a_payment_request_refunds_and_redeems(network,
                                                                             browser):
    net = network
    shop, shop_errors = await open_wallet(browser, net,
                                          viewport={"width": 1280, "height": 900})
    shop_key, _ = await new_key(shop)
    await admin_sends(net, "member.register", {"key": shop_key, "role": "merchant",
                                               "name": "Bakkerij Jansen"})
    await expect(shop.locator("#role")).to_have_text("winkelier", timeout=10_000)
    await expect(shop.locator("#merchant")).to_be_visible()
    await expect(shop.locator("#tasks-section")).to_be_hidden()

    # a citizen in a second browser context, on a phone, with 5.00 earned (from Python)
    buyer, buyer_errors = await open_wallet(browser, net, **PHONE)
    buyer_key, buyer_seed = await new_key(buyer)
    await admin_sends(net, "member.register", {"key": buyer_key, "role": "citizen",
                                               "age_band": "under21", "area": "zuid"})
    await admin_sends(net, "task.post", {
        "task": "markt-zuid", "title": "Kraampjes opbouwen", "area": "zuid",
        "domain": "markt", "reward": 300, "minutes": 60, "slots": 1,
        "deadline": now_ms() + 86_400_000})
    citizen = Keypair.from_seed(bytes.fromhex(buyer_seed))
    async with Client(net.gateways[net.names[3]], citizen, chain=net.chain) as own:
        await own.send("task.claim", {"task": "markt-zuid"})
        await own.send("task.submit", {"task": "markt-zuid", "proof": bytes(32)})
    await admin_sends(net, "task.approve", {"task": "markt-zuid", "citizen": buyer_key})
    await expect(buyer.locator("#balance")).to_have_text(re.compile(r"^3,00\b"),
                                                         timeout=10_000)

    # the payment request: a QR code and the link it holds
    await shop.get_by_label("Bedrag (bijvoorbeeld 2,50)").fill("2,50")
    await shop.locator("#request-memo").fill("Koffie & koek")
    await shop.get_by_role("button", name="Maak betaalverzoek").click()
    link = f"{wallet_url(net)}#pay={shop_key.hex()}&amount=250&memo=Koffie+%26+koek"
    await expect(shop.locator("#request-link")).to_have_attribute("href", link)
    await expect(shop.locator("#request-link")).to_have_text(link)
    await expect(shop.get_by_role("img", name=re.compile("QR-code van het betaalverzoek")))\
        .to_be_visible()
    assert await shop.locator("#qr svg path").get_attribute("d")
    await expect(shop.locator("#payments")).to_have_text("Nog geen betalingen.")

    # the citizen opens the link and pays; the shop sees it arrive by itself
    await buyer.goto(link)
    await expect(buyer.locator("#pay")).to_be_visible(timeout=10_000)
    await expect(buyer.locator("#pay-to")).to_contain_text("Bakkerij Jansen")
    await expect(buyer.locator("#pay-amount")).to_contain_text("2,50")
    await expect(buyer.locator("#pay-memo")).to_have_text("Koffie & koek")
    assert await axe_violations(buyer) == []
    await screenshot(buyer, "wallet-pay-phone")
    await buyer.get_by_role("button", name="Betalen").click()
    await expect(buyer.locator("#message")).to_have_text("Betaald.")
    await expect(buyer.locator("#balance")).to_have_text(re.compile(r"^0,50\b"))
    paid = shop.locator("#payments .payment")
    await expect(paid).to_have_count(1, timeout=10_000)
    await expect(paid).to_contain_text("2,50")
    await expect(paid).to_contain_text("Koffie & koek")
    await expect(shop.locator("#balance")).to_have_text(re.compile(r"^2,50\b"))
    assert await axe_violations(shop) == []
    await screenshot(shop, "wallet-merchant")

    # refund: the coins go back, and the citizen's page sees them come
    await paid.locator(".refund").click()
    await expect(shop.locator("#message")).to_have_text("Terugbetaald.")
    await expect(paid.locator(".refund")).to_have_count(0)
    await expect(shop.locator("#balance")).to_have_text(re.compile(r"^0,00\b"))
    await expect(buyer.locator("#balance")).to_have_text(re.compile(r"^3,00\b"))

    # paid again from the same link, then redeemed at the town hall
    await buyer.goto(link)
    await buyer.get_by_role("button", name="Betalen").click()
    await expect(buyer.locator("#message")).to_have_text("Betaald.")
    await expect(paid).to_have_count(2, timeout=10_000)
    await expect(shop.locator("#balance")).to_have_text(re.compile(r"^2,50\b"))
    await shop.locator("#redeem-amount").fill("3")
    await shop.get_by_role("button", name="Inwisselen").click()
    await expect(shop.locator("#message")).to_have_text(      # the chain's own refusal
        describe("insufficient_funds", {}, "nl"))
    await shop.locator("#redeem-amount").fill("2,50")
    await shop.get_by_role("button", name="Inwisselen").click()
    await expect(shop.locator("#message")).to_have_text("Inwisseling aangevraagd.")
    await expect(shop.locator("#balance")).to_have_text(re.compile(r"^0,00\b"))
    async with Client(net.gateways[net.names[0]], net.admin, chain=net.chain) as admin:
        payouts = await admin.payouts("pending")
    assert [(p["merchant"], p["amount"]) for p in payouts] == [(shop_key.hex(), 250)]
    for shown in (shop, buyer):
        assert await shown.evaluate("() => window.__refused") == []
    assert shop_errors == [] and buyer_errors == []
