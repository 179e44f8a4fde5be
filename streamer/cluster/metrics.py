"""One ``/metrics`` for the whole cluster: every actor's Prometheus text, merged at the head.

Each actor keeps its own registry (labelled by camera). The head parses their expositions,
adds ``node`` and ``group`` labels (camera names are unique per site, so series never collide,
and a camera that moved shows on which node it runs now), and serves one family per metric
name with all samples, so ``sum by (node)`` works in PromQL. A restarted actor starts its
counters at zero again, which Prometheus treats as a counter reset.
"""

from __future__ import annotations

import errno
import socket
import threading
from typing import Any, Callable, Iterable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from streamer.errors import ConfigError
from streamer.sinks.view.access import bearer, loopback_name, resolve_token, token_ok, url_host

Part = tuple[dict[str, str], str]  # (labels to add, Prometheus text of one actor)


def merge_families(parts: Iterable[Part], extra: Iterable[Metric] = ()) -> list[Metric]:
    """Samples of equal metric names from all parts in one family each, with the part's labels."""
    families: dict[str, Metric] = {}
    for labels, text in parts:
        for fam in text_string_to_metric_families(text):
            merged = families.get(fam.name)
            if merged is None:
                merged = families[fam.name] = Metric(fam.name, fam.documentation, fam.type, fam.unit)
            if merged.type != fam.type:  # versions disagree: keep the first meaning, skip the rest
                continue
            merged.samples.extend(Sample(s.name, {**s.labels, **labels}, s.value, s.timestamp, s.exemplar)
                                  for s in fam.samples)
    for fam in extra:
        families.setdefault(fam.name, fam)
    return list(families.values())


class MergedCollector:
    """What the head serves: the latest merged families, swapped in whole by ``update``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: list[Metric] = []

    def update(self, parts: Iterable[Part], extra: Iterable[Metric] = ()) -> None:
        families = merge_families(parts, extra)
        with self._lock:
            self._families = families

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            return iter(list(self._families))

    def describe(self) -> list[Metric]:
        return []  # families change as actors come and go


def merge_text(parts: Iterable[Part], extra: Iterable[Metric] = ()) -> str:
    """The merged exposition as text (what a scrape of the head returns)."""
    collector = MergedCollector()
    collector.update(parts, extra)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry).decode()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no line per scrape on stderr
        pass


def bearer_only(app: Callable, token: str) -> Callable:
    """A WSGI app that answers 401 unless ``Authorization: Bearer TOKEN`` (Prometheus'
    ``authorization: {credentials: ...}`` scrape option sends exactly that)."""

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if token_ok(bearer(environ.get("HTTP_AUTHORIZATION", "")), token):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                            ("WWW-Authenticate", 'Bearer realm="streamer"')])
        return [b"401: /metrics needs its access token (Authorization: Bearer)\n"]

    return guarded


def loopback_only(app: Callable) -> Callable:
    """A WSGI app that answers 403 to a ``Host`` other than a loopback name: without a token the
    server is on loopback, and only a DNS-rebinding page sends another name there (as the view)."""

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if host is None or loopback_name(host):
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"403: /metrics without an access token answers to loopback names only\n"]

    return guarded


class MetricsServer:
    """Serves a ``MergedCollector`` over HTTP in a thread; ``port=0`` picks a free port.
    Loopback is open; a wider ``host`` needs ``$STREAMER_TOKEN`` (camera names and counters are
    the site's layout), checked as a bearer token like the view's."""

    def __init__(self, collector: MergedCollector, host: str = "127.0.0.1", port: int = 9400,
                 token: str | None = None) -> None:
        self.token = resolve_token("cluster.metrics_host", host, token, exposes="the cameras' metrics")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)  # type: ignore[arg-type]
        app = make_wsgi_app(registry)
        try:  # the address family from the host, as prometheus_client's own server does (IPv6 too)
            family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
            server_cls = type("MetricsHTTPServer", (ThreadingWSGIServer,), {"address_family": family})
            self._server = make_server(host, port, bearer_only(app, self.token) if self.token else loopback_only(app),
                                       server_cls, handler_class=_Quiet)
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"cluster.metrics_host {host!r}: cannot listen there ({exc.strerror}); "
                                  "give an address of this machine, e.g. 127.0.0.1") from exc
            hint = ("ports below 1024 need root; " if exc.errno == errno.EACCES else "") + \
                "choose another port (0 = any free one)"
            raise ConfigError(f"cluster.metrics_port {port}: cannot listen on {host} ({exc.strerror}); {hint}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        self.host, self.port = host, int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)
