"""The application's shared objects, under typed keys (aiohttp's AppKey)."""
from __future__ import annotations

from aiohttp import web

NODE = web.AppKey("node", object)
CLOCK_MS = web.AppKey("clock_ms", object)
TOKENS = web.AppKey("tokens", object)
METRICS = web.AppKey("metrics", object)
FEED = web.AppKey("feed", object)
AGGREGATES = web.AppKey("aggregates", object)
STREAMS = web.AppKey("streams", object)          # gateway.streams.StreamSlots
PAGES = web.AppKey("pages", dict)               # gateway.pages.files(): the dashboard
APP_PAGES = web.AppKey("app_pages", dict)       # gateway.pages.app_files(): the wallet
