"""Without /usr/bin/chromium and without root the browser tests fail saying what to do,
and install nothing."""
from __future__ import annotations

import subprocess

import pytest

import browserkit


def test_a_missing_browser_without_root_is_a_clear_failure(monkeypatch, tmp_path):
    monkeypatch.setattr(browserkit, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(browserkit.os, "geteuid", lambda: 1000)
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(browserkit.NoBrowser, match="apt-get install chromium"):
        browserkit.ensure_chromium()
    assert ran == []
