"""A site: many cameras in one process, sharing network calls.

Per camera: a capture thread into its own ``Lane`` (latest frame wins for cameras, files never
drop) and an output thread writing its sinks in order. Per model group (cameras with the same
model and preprocess): one backend and one batcher thread (``streamer.batching``). A camera that
fails (source gone for good, sink broken) is closed and reported; the others go on. The run ends
when every camera has ended, on ``stop`` or Ctrl-C; sinks are closed last, shared ones once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streamer.batching import Batch, BatchRestorer, Lane, Muxer
from streamer.config import CameraConfig, RunConfig
from streamer.errors import ConfigError
from streamer.frame import Frame
from streamer.pipeline import Progress, RunResult, join_threads, put_latest, stop_wait_s
from streamer.sinks.base import Delivery, Sink, deliveries
from streamer.sinks.pool import SinkPool
from streamer.sources import reports_up
from streamer.stats import RunStats

log = logging.getLogger(__name__)

_END = object()


@dataclass
class CameraResult:
    frames_in: int
    frames_out: int
    dropped: int
    reconnects: int
    error: str = ""
    down: str = ""
    """Why it was not delivering when the run stopped ("" = it was up or had ended)."""
    outputs: list[Delivery] = field(default_factory=list)
    """Its push outputs' frames handed in and delivered (``RunResult.outputs``)."""


@dataclass
class SiteResult(RunResult):
    """``RunResult`` summed over cameras, plus each camera's own line and batching counts."""

    cameras: dict[str, CameraResult] = field(default_factory=dict)
    batches: int = 0  # network calls made
    batched_frames: int = 0  # frames that went through them

    @property
    def errors(self) -> dict[str, str]:
        return {k: v.error for k, v in self.cameras.items() if v.error}


@dataclass(eq=False)
class Camera:
    """A lane plus what runs it: source, sinks, output queue, counters."""

    cfg: CameraConfig
    lane: Lane
    source: Any = None
    sinks: list[Sink] = field(default_factory=list)
    out_q: "queue.Queue[Any]" = field(default_factory=lambda: queue.Queue(4))
    written: int = 0
    total: int | None = None
    error: BaseException | None = None
    end_sent: bool = False


class Site:
    def __init__(self, cfg: RunConfig, *, stats: RunStats | None = None,
                 stop: threading.Event | None = None, on_progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.stats = stats or RunStats(model=cfg.model.name, backend=cfg.backend.kind)
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        self.cameras: list[Camera] = []
        self.groups: list[tuple[BatchRestorer, Muxer]] = []
        self.pool = SinkPool(cfg.encoder, self.stats)
        self._backends: list[Any] = []
        self._muxer_of: dict[int, Muxer] = {}  # id(lane) -> its group's muxer
        self._lock = threading.Lock()
        self._written = 0

    # -- setup ----------------------------------------------------------------------------------
    def _open(self) -> None:
        from streamer.backends import open_backend
        from streamer.preprocess.resize import parse_size
        from streamer.sources import source_from_config

        grouped: dict[tuple[Any, ...], list[Camera]] = {}
        cameras = self.cfg.camera_list()
        self.stats.expect(*(c.name for c in cameras))  # /healthz: 503 until every one is up
        for cam_cfg in cameras:
            keep = any(s.side_by_side or s.kind == "view" for s in cam_cfg.sinks)
            cam = Camera(cam_cfg, Lane(cam_cfg.name, False, self.cfg.queue_frames, keep),
                         out_q=queue.Queue(self.cfg.queue_frames))
            self.cameras.append(cam)
            try:  # a camera that cannot start is reported, the others still run
                cam.source = source_from_config(cam_cfg.source, self.stats)
                cam.lane.live = bool(getattr(cam.source, "live", False))
                cam.total = getattr(cam.source, "total_frames", None)
                if self.cfg.max_frames and (cam.total is None or self.cfg.max_frames < cam.total):
                    cam.total = self.cfg.max_frames
                fps = getattr(getattr(cam.source, "info", None), "fps", 0.0) or cam_cfg.source.fps or 0.0
                cam.sinks = self.pool.open(cam_cfg.sinks, fps)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001  StreamerError or a library error: this camera only
                self._fail(cam, exc)
                continue
            m, p = cam_cfg.model or self.cfg.model, cam_cfg.preprocess or self.cfg.preprocess
            grouped.setdefault((m.name, m.arch, p.resize, p.tiling.tile, p.tiling.overlap), []).append(cam)
        b = self.cfg.backend
        for (model, arch, size, tile, overlap), cams in grouped.items():
            backend = open_backend(model, b.kind, b.device, arch=arch, threads=b.threads, fp16=b.fp16,
                                   int8=b.int8, calib=b.calib, inflight=b.inflight)
            self._backends.append(backend)
            restorer = BatchRestorer(backend, size=parse_size(size) if size else None, tile=tile,
                                     overlap=overlap)
            self.groups.append((restorer, Muxer([c.lane for c in cams], self.stop)))
        self._muxer_of = {id(c.lane): mux for _, mux in self.groups for c in self.cameras
                          if c.lane in mux.lanes}

    def _fail(self, cam: Camera, exc: BaseException) -> None:
        if cam.error is None:
            cam.error = exc
            log.error("%s: camera stopped: %s", cam.cfg.name, exc)
            self.stats.on_up(cam.cfg.name, False, str(exc))
        self._close_camera(cam)

    def _close_camera(self, cam: Camera) -> None:
        if cam.source is not None:
            cam.source.close()
        mux = self._muxer_of.get(id(cam.lane))
        if mux is not None:
            mux.close(cam.lane)
        else:
            cam.lane.closed = True

    # -- threads --------------------------------------------------------------------------------
    def _capture(self, cam: Camera, mux: Muxer) -> None:
        name = cam.cfg.name
        try:
            if not reports_up(cam.source):
                self.stats.on_up(name, True)
            frames = iter(cam.source)
            while not (self.stop.is_set() or cam.lane.closed):
                frame = next(frames, None)  # waits for it: pacing, the camera's socket
                if frame is None:
                    if not (self.stop.is_set() or cam.lane.closed):  # ran out (a file), not stopped
                        self.stats.on_end(name)
                    break
                if frame.decode_s:  # decoding only, as its source timed it
                    self.stats.on_stage(name, "decode", frame.decode_s)
                self.stats.on_frame_in(name)
                dropped = mux.put(cam.lane, frame)
                if dropped:
                    self.stats.on_drop(name, dropped)
        except BaseException as exc:  # noqa: BLE001  this camera only
            self._fail(cam, exc)
        finally:
            mux.end(cam.lane)

    def _batch(self, restorer: BatchRestorer, mux: Muxer, cams: list[Camera]) -> None:
        """Take batches and hand their frames on; with ``restorer.depth`` > 1 (``backend.inflight``
        on the uint8 path) the next batch is taken while earlier ones are in the network, if its
        frames are there: a batch in the network is never held while waiting for frames (it was
        handed on only once a new frame came: +55 ms at 10 fps, and a camera gone quiet kept its
        last batch). On the way out, calls already started are waited for before the backend closes."""
        b = self.cfg.batching
        timer = self.stats.on_stage
        by_lane = {id(c.lane): c for c in cams}
        limit = min(b.max_batch, restorer.max_batch or b.max_batch)  # a fixed-size export takes 1
        pending: deque[Batch] = deque()

        def hand_over_oldest() -> None:
            batch = pending.popleft()
            for lane, frame in zip(batch.lanes, restorer.finish(batch, timer)):
                self._hand_over(by_lane[id(lane)], frame)

        try:
            while True:
                # batches pending: only what is queued now; with nothing new, finish the oldest
                items = mux.take(limit, b.timeout_ms / 1000.0, wait=not pending)
                if items is None:
                    break
                items = [(ln, f) for ln, f in items if not ln.closed]
                if items:
                    self.stats.on_call_start()
                    pending.append(restorer.submit(items))
                    self._batch_sizes.observe(len(items))
                while len(pending) >= restorer.depth or (pending and not items):
                    hand_over_oldest()
                in_flight = {id(ln) for batch in pending for ln in batch.lanes}
                for lane in mux.finished():
                    if id(lane) not in in_flight:  # its last frames first
                        self._send_end(by_lane[id(lane)])
            while pending and not self.stop.is_set():
                hand_over_oldest()
        except BaseException as exc:  # noqa: BLE001  the network failed: every camera of the group
            for cam in cams:
                self._fail(cam, exc)
        finally:
            restorer.drain()  # stopped or failed with calls in the network: they end before close
            for cam in cams:
                self._send_end(cam)

    def _hand_over(self, cam: Camera, frame: Any) -> None:
        """To the camera's output: cameras drop the oldest when their sinks lag (never block the
        shared batcher); files wait, unless the camera is closed or the run stops."""
        if cam.lane.live:
            dropped = put_latest(cam.out_q, frame)
            if dropped:
                self.stats.on_drop(cam.cfg.name, dropped)
            return
        while not (self.stop.is_set() or cam.lane.closed):
            try:
                cam.out_q.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def _send_end(self, cam: Camera) -> None:
        if not cam.end_sent:
            cam.end_sent = True
            self._hand_over(cam, _END)

    def _output(self, cam: Camera) -> None:
        name = cam.cfg.name
        try:
            while not cam.lane.closed:
                try:
                    frame: Frame = cam.out_q.get(timeout=0.1)
                except queue.Empty:
                    if self.stop.is_set():
                        break
                    continue
                if frame is _END:
                    break
                t0 = time.perf_counter()
                for sink in cam.sinks:
                    sink.write(frame)
                self.stats.on_stage(name, "encode", time.perf_counter() - t0)
                self.stats.on_frame_out(name, frame.captured_s)
                cam.written += 1
                self._progress()
                if self.cfg.max_frames and cam.written >= self.cfg.max_frames:
                    self.stats.on_end(name)
                    break
        except BaseException as exc:  # noqa: BLE001
            self._fail(cam, exc)
        finally:
            self._close_camera(cam)

    def _progress(self) -> None:
        with self._lock:
            self._written += 1
            written = self._written
        if self.on_progress:
            totals = [c.total for c in self.cameras if c.error is None]
            self.on_progress(written, None if None in totals else sum(t for t in totals if t))

    # -- driver ---------------------------------------------------------------------------------
    def run(self) -> SiteResult:
        """Run every camera until all end, ``stop`` or Ctrl-C; then close everything."""
        from prometheus_client import Histogram

        self._batch_sizes = Histogram("streamer_batch_frames", "Frames per network call",
                                      buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32), registry=self.stats.registry)
        t_start = time.monotonic()
        threads: list[threading.Thread] = []
        interrupted = False
        try:
            self._open()
            for i, (restorer, mux) in enumerate(self.groups):
                cams = [c for c in self.cameras if c.lane in mux.lanes]
                for cam in cams:
                    threads.append(self._thread(self._capture, cam.cfg.name, "capture", cam, mux))
                    threads.append(self._thread(self._output, cam.cfg.name, "output", cam))
                threads.append(self._thread(self._batch, f"group{i}", "batch", restorer, mux, cams))
            for t in threads:
                t.start()
            next_log = time.monotonic() + self.cfg.stats_every_s
            while any(t.is_alive() for t in threads):
                time.sleep(0.1)
                if self.cfg.stats_every_s and time.monotonic() >= next_log:
                    next_log += self.cfg.stats_every_s
                    for line in self.stats_lines():
                        log.info("%s", line)
        except KeyboardInterrupt:
            interrupted = True
            log.info("site: stopping (interrupted)")
        finally:
            interrupted = self._shutdown(threads) or interrupted
        return self._result(time.monotonic() - t_start, interrupted)

    def _thread(self, fn: Any, cam: str, role: str, *args: Any) -> threading.Thread:
        return threading.Thread(target=fn, args=args, name=f"streamer-{cam}-{role}", daemon=True)

    def _shutdown(self, threads: list[threading.Thread]) -> bool:
        self.stop.set()
        for cam in self.cameras:
            if cam.source is not None:
                cam.source.close()
        timeout_s = max([float(getattr(c.source, "timeout_s", 5.0)) for c in self.cameras] or [5.0])
        # a batch's call took its frames' network times together; the one in progress, then those in flight
        calls = (self.cfg.backend.inflight + 1) * self.cfg.batching.max_batch
        interrupted = join_threads(threads, stop_wait_s(timeout_s, calls, self.stats), "site")
        errors, sinks_interrupted = self.pool.close()
        for exc in errors:
            log.error("site: closing a sink failed: %s", str(exc) or type(exc).__name__)
        for backend in self._backends:
            backend.close()
        return interrupted or sinks_interrupted

    def _result(self, seconds: float, interrupted: bool) -> SiteResult:
        cams = {}
        for cam in self.cameras:
            st = self.stats.camera(cam.cfg.name)
            cams[cam.cfg.name] = CameraResult(st.frames_in, cam.written, st.dropped, st.reconnects,
                                              str(cam.error) if cam.error else "",
                                              "" if cam.error else st.down_reason, deliveries(cam.sinks))
        reg = self.stats.registry
        return SiteResult(
            frames_in=sum(c.frames_in for c in cams.values()), frames_out=sum(c.frames_out for c in cams.values()),
            dropped=sum(c.dropped for c in cams.values()), reconnects=sum(c.reconnects for c in cams.values()),
            seconds=seconds, interrupted=interrupted, stats=self.stats, cameras=cams,
            outputs=[d for c in cams.values() for d in c.outputs],
            batches=int(reg.get_sample_value("streamer_batch_frames_count") or 0),
            batched_frames=int(reg.get_sample_value("streamer_batch_frames_sum") or 0))

    def stats_lines(self) -> list[str]:
        return [self.stats.line(cam.cfg.name) for cam in self.cameras]


def run_site(cfg: RunConfig, *, stats: RunStats | None = None, stop: threading.Event | None = None,
             on_progress: Progress | None = None) -> SiteResult:
    """Run every camera of ``cfg`` in this process (see module doc); never raises for one camera."""
    return Site(cfg, stats=stats, stop=stop, on_progress=on_progress).run()
