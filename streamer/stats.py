"""Live counters of a run, kept in a per-run Prometheus registry (no global state).

The pipeline updates them; the web view serves ``/metrics`` from ``registry`` and ``/healthz`` and
its stats panel from ``snapshot()``. One ``RunStats`` per process run, labelled by camera name.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# decode: decoding only, as the source timed it (Frame.decode_s), not the wait for the frame
STAGES = ("decode", "preprocess", "network", "postprocess", "encode")
_LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class RateMeter:
    """Events per second over the last ``window_s``: a count over a span, so bursts (a batch of
    frames from several cameras arrives at once) do not inflate it, and it falls to 0 within the
    window once events stop (a smoothed 1/dt did neither: it read high and froze when a camera
    went down)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._start = 0.0
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._start = self._start or now
            self._times.append(now)
            self._prune(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._prune(now)
            span = min(self.window_s, now - self._start) if self._start else 0.0
            if span >= self.window_s:
                return len(self._times) / self.window_s
            # the first seconds: intervals between the events seen so far
            return (len(self._times) - 1) / span if len(self._times) > 1 and span > 0 else 0.0

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()


@dataclass
class CameraState:
    """What the operator panel shows for one camera."""

    up: bool = False
    ever_up: bool = False  # False: not up yet (listed from the start by ``RunStats.expect``)
    ended: bool = False  # its source ran out (a file) or it wrote its max_frames: done, not down
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_error: str = ""
    latency_ms: float = 0.0  # capture -> output, smoothed
    _out_rate: RateMeter = field(default_factory=RateMeter, repr=False)

    @property
    def fps(self) -> float:
        """Frames written per second over the last two seconds (0 while nothing comes out)."""
        return self._out_rate.rate()

    @property
    def state(self) -> str:
        """ended, up, DOWN (the error), down or not up yet: the stats line's last word."""
        if self.ended:
            return "ended"
        if self.up:
            return "up"
        return f"DOWN ({self.last_error})" if self.last_error else self.down_reason

    @property
    def down_reason(self) -> str:
        """Why it is not delivering now ("" while up or once ended): for the run summary."""
        if self.up or self.ended:
            return ""
        return self.last_error or ("not up yet" if not self.ever_up else "down")


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
        self.sink_reconnects = Counter("streamer_sink_reconnects", "Output (RTSP push) reconnects after a loss",
                                       ["camera"], registry=self.registry)
        self.source_up = Gauge("streamer_source_up", "1 while the camera delivers frames", ["camera"], registry=self.registry)
        self.stage_s = Histogram("streamer_stage_seconds", "Time per frame in each pipeline stage",
                                 ["camera", "stage"], buckets=_LATENCY_BUCKETS_S, registry=self.registry)
        self.latency_s = Histogram("streamer_latency_seconds", "Capture to output latency",
                                   ["camera"], buckets=_LATENCY_BUCKETS_S, registry=self.registry)
        self.slowest_call_s = 0.0
        """The longest network call per frame so far: stopping waits for one in progress (an 8K
        frame on a CPU takes half a minute; a thread left in it aborts the interpreter at exit)."""
        self.call_started = False
        """A network call has started (``on_call_start``). Until one has been timed, the call in
        progress is the first (a warm-up: minutes with TensorRT), and stopping waits for it up to
        the cap rather than 0 x ``slowest_call_s``."""

    def camera(self, name: str) -> CameraState:
        with self._lock:
            state = self._cams.get(name)
            if state is None:
                state = self._cams[name] = CameraState()
                for counter in (self.frames_in, self.frames_out, self.dropped, self.reconnects,
                                self.sink_reconnects):
                    counter.labels(name)  # every series exists from the start, at 0 (Prometheus' advice)
            return state

    def expect(self, *cams: str) -> None:
        """The run's cameras, listed before any delivers: ``/healthz`` is 503 and
        ``streamer_source_up`` 0 for each until it is up (not only for those that reported)."""
        for cam in cams:
            if not self.camera(cam).up:
                self.source_up.labels(cam).set(0)

    def on_frame_in(self, cam: str) -> None:
        self.frames_in.labels(cam).inc()
        self.camera(cam).frames_in += 1

    def on_drop(self, cam: str, n: int = 1) -> None:
        self.dropped.labels(cam).inc(n)
        state = self.camera(cam)
        with self._lock:  # the capture, output and push-sender threads all drop
            state.dropped += n

    def on_up(self, cam: str, up: bool, error: str = "") -> None:
        st = self.camera(cam)
        st.up = up
        st.ever_up = st.ever_up or up
        st.last_error = "" if up else error
        self.source_up.labels(cam).set(1 if up else 0)

    def on_end(self, cam: str) -> None:
        """The camera is done (its file ran out, its max_frames written): "ended", not "up"."""
        self.camera(cam).ended = True

    def on_reconnect(self, cam: str) -> None:
        self.reconnects.labels(cam).inc()
        self.camera(cam).reconnects += 1

    def on_sink_reconnect(self, cam: str) -> None:
        self.sink_reconnects.labels(cam).inc()

    def on_stage(self, cam: str, stage: str, seconds: float) -> None:
        self.stage_s.labels(cam, stage).observe(seconds)
        if stage == "network":
            with self._lock:  # a site's batch threads all report; check and set as one step
                if seconds > self.slowest_call_s:
                    self.slowest_call_s = seconds

    def on_call_start(self) -> None:
        """A network call is about to start (the pipeline's and a site's inference threads)."""
        self.call_started = True

    def on_frame_out(self, cam: str, captured_s: float) -> None:
        now = time.monotonic()
        st = self.camera(cam)
        st.frames_out += 1
        self.frames_out.labels(cam).inc()
        if captured_s:
            lat = now - captured_s
            self.latency_s.labels(cam).observe(lat)
            st.latency_ms = 0.9 * st.latency_ms + 100.0 * lat if st.latency_ms else 1000.0 * lat
        st._out_rate.tick(now)

    def line(self, cam: str) -> str:
        """The periodic stats line of one camera (one-camera runs and sites alike)."""
        st = self.camera(cam)
        return (f"{cam}: {st.fps:.1f} fps, in {st.frames_in}, out {st.frames_out}, dropped {st.dropped}, "
                f"latency {st.latency_ms:.0f} ms, reconnects {st.reconnects}, {st.state}")

    def snapshot(self) -> dict:
        """Plain dict for JSON (web panel, healthz, periodic stats line)."""
        with self._lock:
            cams = {k: {f: getattr(v, f) for f in ("up", "ended", "frames_in", "frames_out", "dropped",
                                                    "reconnects", "last_error", "fps", "latency_ms")}
                    for k, v in self._cams.items()}
        return {"model": self.model, "backend": self.backend, "cameras": cams}

    def down_cameras(self) -> list[str]:
        """Cameras not delivering now: lost ones and those not up yet."""
        with self._lock:
            return [k for k, v in self._cams.items() if not v.up]

    def waiting_cameras(self) -> list[str]:
        """Cameras still connecting: never up and no error yet (a subset of ``down_cameras``;
        one whose first connect failed is down, with its reason)."""
        with self._lock:
            return [k for k, v in self._cams.items() if not v.ever_up and not v.last_error]
