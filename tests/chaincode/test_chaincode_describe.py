"""The plain sentence an app shows for a code and its info."""
from __future__ import annotations

from chaincode import describe
from chaincode.errors import CODES


def test_cap_refusal_names_the_cap_the_period_and_the_euros_left():
    text = describe("cap_exceeded", {"cap": "monthly", "period": "2026-11", "allowed": 1250})
    assert "monthly limit" in text and "2026-11" in text and "12.50" in text


def test_cap_refusal_with_nothing_left_says_so():
    text = describe("cap_exceeded", {"cap": "programme", "period": "2026", "allowed": 0})
    assert "programme" in text and "cannot earn more" in text


def test_hourly_refusal_names_the_age_group_and_the_most_it_may_pay():
    text = describe("hourly_rate_exceeded", {"band": "under21", "max_reward": 660})
    assert "under 21" in text and "6.60" in text


def test_every_code_has_its_own_sentence():
    sentences = [describe(code, {}) for code in CODES + ("ok",)]
    assert len(set(sentences)) == len(sentences)
    assert all(s.endswith(".") for s in sentences)
