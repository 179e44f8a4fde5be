"""Who may watch: loopback is open, anything wider needs the access token.

The token is accepted three ways because three kinds of client ask: scripts and Prometheus send
``Authorization: Bearer TOKEN``; a browser opens ``/?token=TOKEN`` once; the page's WebSocket
then carries the ``streamer_token`` cookie set on that first load.

A cookie goes with every request the browser makes to this host, whichever page asks (another
port of the same host is the same "site", so even SameSite=Strict does not stop it). Reading a
cross-origin ``fetch`` is up to CORS, which we never allow; a WebSocket has no such guard, so its
upgrade is also checked for a same-origin ``Origin`` header (``same_origin``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from streamer.errors import ConfigError

TOKEN_ENV = "STREAMER_TOKEN"
COOKIE = "streamer_token"


def cookie_name(token: str) -> str:
    """Per token: browsers share cookies across the ports of a host, so two views on one machine
    (different tokens) would overwrite each other's cookie and lock the first page out."""
    return f"{COOKIE}_{hashlib.sha256(token.encode()).hexdigest()[:8]}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True only for addresses nobody else can reach; names other than localhost count as wide."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as it goes into a URL we print: a wildcard bind as ``<this-host>``, IPv6 in
    brackets (``http://::1:9400`` is no URL)."""
    shown = host if is_loopback(host) or host not in ("", "0.0.0.0", "::") else "<this-host>"
    return f"[{shown}]" if ":" in shown else shown


def bearer(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (the scheme is case-insensitive,
    RFC 7235: curl users type bearer); None for another scheme or none."""
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def token_ok(given: str | None, token: str) -> bool:
    """``given`` is the token, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    """``host[:port]`` (IPv6 in brackets) as (lower-case host, port); the scheme's port if none."""
    try:
        parts = urlsplit(f"//{netloc.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def loopback_name(host_header: str) -> bool:
    """The ``Host`` a request was sent to is a loopback name or address. Without a token the view
    serves loopback only, and a browser page cannot reach that except through DNS rebinding: a
    name the attacker controls made to resolve to 127.0.0.1, which then sends that name as ``Host``."""
    parsed = _host_port(host_header, "http")
    if parsed is None:
        return False
    name = parsed[0]
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def same_origin(request: web.Request) -> bool:
    """The request comes from a page of this server, or from no page at all.

    Browsers send ``Origin`` with every WebSocket upgrade and a page cannot forge it: it must be
    http(s) on the host (and port) the request was sent to, the ``Host`` header, or the
    ``X-Forwarded-Host`` a reverse proxy sets when it rewrites ``Host`` (a page cannot set that
    header on a WebSocket either). No ``Origin`` at all: not a browser page (a script, a tool),
    which has to bring the token like any other client; ``Origin: null`` (a sandboxed frame, a
    file) is refused.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or parts.path not in ("", "/"):
        return False
    theirs = _host_port(parts.netloc, parts.scheme)
    hosts = [request.headers.get("Host", "")] + request.headers.get("X-Forwarded-Host", "").split(",")
    return theirs is not None and any(_host_port(h, parts.scheme) == theirs for h in hosts if h.strip())


def resolve_token(what: str, host: str, token: str | None, exposes: str = "the video") -> str | None:
    """The token to enforce (argument, else ``$STREAMER_TOKEN``); refuse a wide bind without one."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise ConfigError(f"{what}: binding {host or 'all interfaces'} exposes {exposes} to the network "
                          f"without an access token; set {TOKEN_ENV} (8+ characters, e.g. export {TOKEN_ENV}="
                          "$(python3 -c 'import secrets; print(secrets.token_urlsafe())')), or bind 127.0.0.1")
    if token is not None and (len(token) < 8 or any(c.isspace() for c in token)):
        raise ConfigError(f"{what}: access token must be at least 8 characters without spaces; "
                          "generate one with: python -c 'import secrets; print(secrets.token_urlsafe())'")
    return token


def _given(request: web.Request, cookie: str) -> tuple[str | None, bool]:
    """The token the request carries and whether it came in the query (then we set the cookie)."""
    given = bearer(request.headers.get("Authorization", ""))
    if given is not None:
        return given, False
    if "token" in request.query:
        return request.query["token"], True
    return request.cookies.get(cookie), False


def token_middleware(token: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """401 for every request without the token; with no token configured (a loopback bind),
    everything sent to a loopback name passes and anything else is 403 (``loopback_name``)."""

    cookie = cookie_name(token) if token else COOKIE

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is None:
            host = request.headers.get("Host")
            if host is not None and not loopback_name(host):
                raise web.HTTPForbidden(
                    text=f"403: this view has no access token, so it answers to localhost, 127.0.0.1 and [::1] "
                         f"only, not to {host[:100]!r} (set {TOKEN_ENV} to serve other names)\n")
            return await handler(request)
        given, from_query = _given(request, cookie)
        if not token_ok(given, token):
            raise web.HTTPUnauthorized(
                text="401: this view needs its access token (Authorization: Bearer, or ?token=)\n",
                headers={"WWW-Authenticate": 'Bearer realm="streamer"'})
        response = await handler(request)
        if from_query and not response.prepared:
            response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
        return response

    return check
