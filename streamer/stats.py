"""Live counters of a run, kept in a per-run Prometheus registry (no global state).

The pipeline updates them; the web view serves ``/metrics`` from ``registry`` and ``/healthz`` and
its stats panel from ``snapshot()``. One ``RunStats`` per process run, labelled by camera name.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGES = ("decode", "preprocess", "network", "postprocess", "encode")
_LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class CameraState:
    """What the operator panel shows for one camera."""

    up: bool = False
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_error: str = ""
    fps: float = 0.0
    latency_ms: float = 0.0  # capture -> output, smoothed
    _last_out_s: float = field(default=0.0, repr=False)


class RunStats:
    def __init__(self, model: str = "", backend: str = "") -> None:
        self.model, self.backend = model, backend
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._cams: dict[str, CameraState] = {}
        self.frames_in = Counter("streamer_frames_in", "Frames captured", ["camera"], registry=self.registry)
        self.frames_out = Counter("streamer_frames_out", "Frames written to sinks", ["camera"], registry=self.registry)
        self.dropped = Counter("streamer_frames_dropped", "Frames dropped (latest frame wins)", ["camera"], registry=self.registry)
        self.reconnects = Counter("streamer_reconnects", "Source reconnect attempts that succeeded", ["camera"], registry=self.registry)
        self.source_up = Gauge("streamer_source_up", "1 while the camera delivers frames", ["camera"], registry=self.registry)
        self.stage_s = Histogram("streamer_stage_seconds", "Time per frame in each pipeline stage",
                                 ["camera", "stage"], buckets=_LATENCY_BUCKETS_S, registry=self.registry)
        self.latency_s = Histogram("streamer_latency_seconds", "Capture to output latency",
                                   ["camera"], buckets=_LATENCY_BUCKETS_S, registry=self.registry)

    def camera(self, name: str) -> CameraState:
        with self._lock:
            return self._cams.setdefault(name, CameraState())

    def on_frame_in(self, cam: str) -> None:
        self.frames_in.labels(cam).inc()
        self.camera(cam).frames_in += 1

    def on_drop(self, cam: str, n: int = 1) -> None:
        self.dropped.labels(cam).inc(n)
        self.camera(cam).dropped += n

    def on_up(self, cam: str, up: bool, error: str = "") -> None:
        st = self.camera(cam)
        st.up = up
        st.last_error = "" if up else error
        self.source_up.labels(cam).set(1 if up else 0)

    def on_reconnect(self, cam: str) -> None:
        self.reconnects.labels(cam).inc()
        self.camera(cam).reconnects += 1

    def on_stage(self, cam: str, stage: str, seconds: float) -> None:
        self.stage_s.labels(cam, stage).observe(seconds)

    def on_frame_out(self, cam: str, captured_s: float) -> None:
        now = time.monotonic()
        st = self.camera(cam)
        st.frames_out += 1
        self.frames_out.labels(cam).inc()
        if captured_s:
            lat = now - captured_s
            self.latency_s.labels(cam).observe(lat)
            st.latency_ms = 0.9 * st.latency_ms + 100.0 * lat if st.latency_ms else 1000.0 * lat
        if st._last_out_s:
            dt = now - st._last_out_s
            if dt > 0:
                st.fps = 0.9 * st.fps + 0.1 / dt if st.fps else 1.0 / dt
        st._last_out_s = now

    def snapshot(self) -> dict:
        """Plain dict for JSON (web panel, healthz, periodic stats line)."""
        with self._lock:
            cams = {k: {f: getattr(v, f) for f in ("up", "frames_in", "frames_out", "dropped",
                                                    "reconnects", "last_error", "fps", "latency_ms")}
                    for k, v in self._cams.items()}
        return {"model": self.model, "backend": self.backend, "cameras": cams}

    def down_cameras(self) -> list[str]:
        with self._lock:
            return [k for k, v in self._cams.items() if not v.up]
