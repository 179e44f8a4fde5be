"""CameraGroup: the body of a Ray actor; one ``Site`` for its cameras, run in a thread.

The site starts in the constructor, so when Ray restarts the actor (its process or node died)
on another node, the cameras come back there without the head doing anything. Methods only read
state, so a status call never waits for the site.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from streamer.config import RunConfig
from streamer.site import Site, SiteResult
from streamer.stats import RunStats


class CameraGroup:
    def __init__(self, cfg: RunConfig, group: int) -> None:
        self.group = group
        self.node = self._node_id()
        self.host = socket.gethostname()
        self.started_s = time.time()
        self.stats = RunStats(model=cfg.model.name, backend=cfg.backend.kind)
        self.cameras = [c.name for c in cfg.camera_list()]
        self._stop = threading.Event()
        self._site = Site(cfg, stats=self.stats, stop=self._stop)
        self._result: SiteResult | None = None
        self._error = ""
        self._thread = threading.Thread(target=self._run, name=f"streamer-group{group}", daemon=True)
        self._thread.start()

    @staticmethod
    def _node_id() -> str:
        try:
            import ray

            return ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001  outside Ray (tests of the class itself)
            return "local"

    def _run(self) -> None:
        try:
            self._result = self._site.run()
        except Exception as exc:  # noqa: BLE001  reported by status(); the head decides
            self._error = str(exc) or type(exc).__name__

    def status(self) -> dict[str, Any]:
        """Where this group runs and how each of its cameras is doing (plain data for the head)."""
        cams = self.stats.snapshot()["cameras"]
        errors = self._result.errors if self._result else {}
        return {"group": self.group, "node": self.node, "host": self.host, "started_s": self.started_s,
                "running": self._thread.is_alive(), "error": self._error,
                "cameras": {name: {**cams.get(name, {}), "error": errors.get(name, "") or self._error}
                            for name in self.cameras}}

    def metrics(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.stats.registry).decode()

    def stop(self, timeout_s: float = 20.0) -> dict[str, Any]:
        """End the site cleanly (sinks flushed) and report the final status."""
        self._stop.set()
        self._thread.join(timeout_s)
        return self.status()
