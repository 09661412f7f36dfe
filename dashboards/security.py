"""Browser-facing protections as plain ASGI middleware, and JSON safe to embed in a page.

* :class:`SameOriginMiddleware` refuses (403) a state-changing request that a browser marks as
  cross-site (``Sec-Fetch-Site``) or whose ``Origin`` is not this site's (or an allowed one).
  The session and CSRF token checks happen in the routes; this is the layer before them.
* :class:`SecurityHeadersMiddleware` adds a strict Content-Security-Policy (scripts only from
  this app, no inline script), ``nosniff``, no framing and a same-origin referrer policy.
* :func:`script_json` serialises data for a ``<script type="application/json">`` element.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_SITE = frozenset({b"same-origin", b"none"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def to_json(data: Any) -> bytes:
    return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)


def script_json(data: Any) -> str:
    """JSON that cannot close or break out of the ``<script>`` element holding it."""
    text = to_json(data).decode()
    for raw, escaped in _SCRIPT_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


def _own_origin(scope: Scope) -> str:
    host = (_header(scope, b"host") or b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}"


class SameOriginMiddleware:
    """Refuse cross-origin state-changing requests before any route sees them."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(o.rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            why = self._refusal(scope)
            if why is not None:
                body = to_json({"error": why})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        site = _header(scope, b"sec-fetch-site")
        if site is not None and site not in _SAME_SITE:
            return f"cross-site request refused (Sec-Fetch-Site: {site.decode('latin-1')})"
        origin = _header(scope, b"origin")
        if origin is not None:
            text = origin.decode("latin-1").rstrip("/")
            if text != _own_origin(scope) and text not in self.allowed:
                return f"cross-origin request refused (Origin: {text})"
        return None


class SecurityHeadersMiddleware:
    """Add the Content-Security-Policy and related headers to every HTTP response."""

    HEADERS = (
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
