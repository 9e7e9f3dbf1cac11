"""Errors as `application/problem+json` (RFC 9457) with the contract's `code`, for every
failure the gateway answers, including aiohttp's own (unknown path, wrong method, a body
over the limit) and a bug of ours, which is logged and never shown as a traceback."""
from __future__ import annotations

import json

import structlog
from aiohttp import web

log = structlog.get_logger("stadsmunt.gateway")

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
          415: "Unsupported Media Type", 429: "Too Many Requests",
          500: "Internal Server Error",
          503: "Service Unavailable"}


def choose_language(header: str | None) -> str:
    """The language of the sentences of an answer, from an Accept-Language header: "nl"
    when Dutch (nl, nl-NL or any nl-...) is the most wanted language we have, else "en".

    q-values count simply: the highest q wins, the first listed on a tie; q=0 (or a q
    that is not a number from 0 to 1) is "not this"; languages we have no sentences in
    are passed over, and * is English."""
    best, best_q = "en", 0.0
    for entry in (header or "").split(","):
        tag, *params = entry.split(";")
        primary = tag.strip().lower().split("-")[0]
        language = "nl" if primary == "nl" else "en" if primary in ("en", "*") else None
        if language is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:         # also nan
                    q = 0.0
        if q > best_q:
            best, best_q = language, q
    return best


def language(request: web.Request) -> str:
    """The request's language of sentences (choose_language of its Accept-Language)."""
    return choose_language(request.headers.get("Accept-Language"))


def language_headers(language_: str) -> dict:
    """The headers of an answer whose sentences are in `language_`."""
    return {"Content-Language": language_, "Vary": "Accept-Language"}


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict | None = None,
                 **extra):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers, self.extra = headers or {}, extra


def problem_response(status: int, code: str, detail: str, headers: dict | None = None,
                     **extra) -> web.Response:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
            "detail": detail, "code": code, **extra}
    return web.Response(status=status, text=json.dumps(body),
                        content_type="application/problem+json", headers=headers)


@web.middleware
async def problems(request: web.Request, handler):
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(problem.status, problem.code, problem.detail,
                                problem.headers, **problem.extra)
    except web.HTTPRequestEntityTooLarge:
        return problem_response(413, "too_large", "The request body is over the limit.")
    except web.HTTPNotFound:
        return problem_response(404, "not_found", f"There is nothing at {request.path}.")
    except web.HTTPMethodNotAllowed as error:
        return problem_response(405, "method_not_allowed",
                                f"{request.method} is not allowed on {request.path}.",
                                headers={"Allow": ", ".join(sorted(error.allowed_methods))})
    except web.HTTPException as error:
        return problem_response(error.status, error.reason.lower().replace(" ", "_"),
                                error.text or error.reason)
    except Exception:
        log.exception("gateway_error", path=request.path)
        # a write may have reached the node before the failure: say what is known
        detail = ("The gateway failed while answering. A transaction you sent may still "
                  "have been taken: look it up with GET /v1/tx/{tx_id} before sending it "
                  "again (the same envelope is never executed twice)."
                  if request.method == "POST" else "The gateway failed while answering.")
        return problem_response(500, "internal", detail)
