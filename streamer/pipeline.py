"""Wires the stages: capture thread -> inference thread -> output thread, bounded queues between.

Decoding, the network and encoding overlap (PyAV, torch and ONNX Runtime release the GIL).
Live sources: the capture queue drops its oldest frame when full (latest frame wins, counted),
so latency stays bounded when the network is slower than the camera. Files: every queue blocks,
nothing is dropped, order and PTS are kept. Whatever happens, everything is closed in
``finally``, sinks last so their files are flushed and playable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from streamer.frame import Frame
from streamer.preprocess.frames import FrameRestorer
from streamer.sinks.base import Delivery, Sink, close_sinks, deliveries, write_order
from streamer.sources import reports_up
from streamer.sources.base import Source
from streamer.stats import RunStats

log = logging.getLogger(__name__)

_END = object()  # end of stream marker, passed down the queues
Progress = Callable[[int, "int | None"], None]  # (frames written, total or None)


@dataclass
class RunResult:
    """What a finished run did; ``stats`` holds the per-stage timing histograms."""

    frames_in: int
    frames_out: int
    dropped: int
    reconnects: int
    seconds: float
    interrupted: bool
    """Ctrl-C or SIGTERM cut the run short; a caller's ``stop`` event is not an interruption."""
    stats: RunStats = field(repr=False)
    outputs: list[Delivery] = field(default_factory=list)
    """Each push output's frames handed in and delivered (RTSP push; not files or listening outputs)."""

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    @property
    def undelivered(self) -> list[Delivery]:
        """Push outputs that got frames and delivered none (a server never there): the run went
        on regardless, as live outputs do; the CLI makes this its error."""
        return [d for d in self.outputs if d.failed]


STOP_GRACE_S = 5.0
"""Stopping waits this long past a source's timeout (and the network calls still to finish)."""
STOP_CALLS_MAX_S = 60.0
"""... and at most this long for those calls (two of an 8K frame on a CPU): a call that hangs (a
stuck GPU) kept Ctrl-C waiting for the calls in flight times the slowest one so far, the first
call's warm-up included (minutes with TensorRT or a site's batches)."""
STOP_CALL_FLOOR_S = 10.0
"""... and at least this long per call: the slowest call so far does not bound the one in
progress (a bigger frame, another model group's first batch in a site)."""


def stop_wait_s(source_timeout_s: float, calls: float, stats: RunStats) -> float:
    """How long stopping waits for the stage threads: ``calls`` network calls still to finish.
    Before any call was timed, a call that has started is the first and gets the cap: 0 s for
    it left its thread running in torch and the interpreter aborted at exit (the wait ends as
    soon as the threads do, so a call that ends early is not waited for the whole cap)."""
    if stats.slowest_call_s:
        calls_s = min(STOP_CALLS_MAX_S, calls * max(stats.slowest_call_s, STOP_CALL_FLOOR_S))
    else:
        calls_s = STOP_CALLS_MAX_S if stats.call_started else 0.0
    return source_timeout_s + STOP_GRACE_S + calls_s


def join_threads(threads: list[threading.Thread], timeout_s: float, label: str) -> bool:
    """Wait for started threads up to ``timeout_s``; Ctrl-C meanwhile is noted, not obeyed
    (stopping half-way would leave encoders open). Returns whether Ctrl-C came."""
    interrupted = False
    deadline = time.monotonic() + timeout_s
    pending = [t for t in threads if t.ident is not None]
    while pending and time.monotonic() < deadline:
        try:
            pending[0].join(0.2)
        except KeyboardInterrupt:
            interrupted = True
        pending = [t for t in pending if t.is_alive()]
    if pending:
        log.warning("%s: %s did not stop in time", label, ", ".join(t.name for t in pending))
    return interrupted


def put_latest(q: "queue.Queue[Any]", item: Any) -> int:
    """Put without blocking; when full, drop the oldest items first. Returns how many dropped."""
    dropped = 0
    while True:
        try:
            q.put_nowait(item)
            return dropped
        except queue.Full:
            try:
                q.get_nowait()  # only the capture thread puts here, and _END comes after its last frame
            except queue.Empty:
                continue
            dropped += 1


class Pipeline:
    def __init__(self, source: Source, restorer: FrameRestorer, sinks: list[Sink], *,
                 stats: RunStats | None = None, queue_frames: int = 4, max_frames: int = 0,
                 stats_every_s: float = 0.0, on_progress: Progress | None = None,
                 stop: threading.Event | None = None) -> None:
        self.source, self.restorer, self.sinks = source, restorer, write_order(sinks)
        self.stats = stats or RunStats()
        self.cam = getattr(source, "name", "main")
        self.stats.expect(self.cam)  # /healthz: 503 until it is up
        self.max_frames = max_frames
        self.stats_every_s = stats_every_s
        self.on_progress = on_progress
        self.stop = stop or threading.Event()
        self.total = getattr(source, "total_frames", None)
        if max_frames and (self.total is None or max_frames < self.total):
            self.total = max_frames
        self._q_in: queue.Queue[Any] = queue.Queue(queue_frames)
        self._q_out: queue.Queue[Any] = queue.Queue(queue_frames)
        self._error: BaseException | None = None
        self._written = 0

    # -- stage threads --------------------------------------------------------------------------
    def _put(self, q: "queue.Queue[Any]", item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: "queue.Queue[Any]") -> Any:
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self.stop.set()

    def _capture(self) -> None:
        live = bool(getattr(self.source, "live", False))
        try:
            if not reports_up(self.source):
                self.stats.on_up(self.cam, True)
            frames = iter(self.source)
            while not self.stop.is_set():
                frame = next(frames, None)  # waits for it: pacing, the camera's socket
                if frame is None:
                    if not self.stop.is_set():  # ran out (a file), not stopped
                        self.stats.on_end(self.cam)
                    break
                if frame.decode_s:  # decoding only, as its source timed it
                    self.stats.on_stage(self.cam, "decode", frame.decode_s)
                self.stats.on_frame_in(self.cam)
                if live:
                    dropped = put_latest(self._q_in, frame)
                    if dropped:
                        self.stats.on_drop(self.cam, dropped)
                elif not self._put(self._q_in, frame):
                    return
        except BaseException as exc:  # noqa: BLE001  handed to the main thread
            self._fail(exc)
        finally:
            self._put(self._q_in, _END)

    def _infer(self) -> None:
        timer = lambda stage, s: self.stats.on_stage(self.cam, stage, s)  # noqa: E731
        depth = getattr(self.restorer, "depth", 1)
        pending: deque = deque()  # frames in flight (depth > 1), finished in capture order
        try:
            while not self.stop.is_set():
                if pending:  # only frames already here: never hold a result waiting for the next one
                    try:
                        frame = self._q_in.get_nowait()
                    except queue.Empty:  # a live camera between frames: hand on the oldest now
                        if not self._put(self._q_out, self.restorer.finish(pending.popleft(), timer)):
                            return
                        continue
                else:
                    frame = self._get(self._q_in)
                if frame is _END:
                    break
                self.stats.on_call_start()
                if depth <= 1:
                    out = self.restorer(frame, timer)
                else:
                    pending.append(self.restorer.submit(frame, timer))
                    if len(pending) < depth:
                        continue
                    out = self.restorer.finish(pending.popleft(), timer)
                if not self._put(self._q_out, out):
                    return
            while pending and not self.stop.is_set():
                if not self._put(self._q_out, self.restorer.finish(pending.popleft(), timer)):
                    return
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            self._drain(pending)
            self._put(self._q_out, _END)

    def _drain(self, pending: deque) -> None:
        """Wait for calls started and not finished (stop, an error) before the backend closes."""
        while pending:
            try:
                self.restorer.finish(pending.popleft())
            except Exception as exc:  # noqa: BLE001  the run is ending; its error, if any, is already kept
                log.debug("%s: a frame in flight failed while stopping: %s", self.cam, exc)

    def _output(self) -> None:
        try:
            while True:
                frame: Frame = self._get(self._q_out)
                if frame is _END:
                    break
                t0 = time.perf_counter()
                for sink in self.sinks:
                    sink.write(frame)
                self.stats.on_stage(self.cam, "encode", time.perf_counter() - t0)
                self.stats.on_frame_out(self.cam, frame.captured_s)
                self._written += 1
                if self.on_progress:
                    self.on_progress(self._written, self.total)
                if self.max_frames and self._written >= self.max_frames:
                    break
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            self.stop.set()  # output is done: upstream stops too

    # -- driver ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run until the source ends, ``max_frames``, ``stop`` or Ctrl-C; then close everything."""
        threads = [threading.Thread(target=fn, name=f"streamer-{self.cam}-{fn.__name__[1:]}", daemon=True)
                   for fn in (self._capture, self._infer, self._output)]
        t_start = time.monotonic()
        interrupted = False
        try:
            for t in threads:
                t.start()
            next_log = t_start + self.stats_every_s
            while threads[2].is_alive():
                threads[2].join(0.2)
                if self.stats_every_s and time.monotonic() >= next_log:
                    next_log += self.stats_every_s
                    log.info("%s", self.stats.line(self.cam))
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM mapped to it by the CLI
            interrupted = True
            log.info("%s: stopping (interrupted)", self.cam)
        finally:
            interrupted = self._shutdown(threads) or interrupted
        if self._error is not None:
            raise self._error
        st = self.stats.camera(self.cam)
        return RunResult(st.frames_in, self._written, st.dropped, st.reconnects,
                         time.monotonic() - t_start, interrupted, self.stats, deliveries(self.sinks))

    def _shutdown(self, threads: list[threading.Thread]) -> bool:
        """Stop the stages, wait for them, close sinks; a second Ctrl-C does not cut this short
        (a half-closed encoder would leave a broken file). Returns whether one came."""
        self.stop.set()
        self.source.close()
        calls = getattr(self.restorer, "depth", 1) + 1  # the one in progress, then those in flight
        timeout_s = stop_wait_s(float(getattr(self.source, "timeout_s", 5.0)), calls, self.stats)
        interrupted = join_threads(threads, timeout_s, self.cam)
        return close_sinks(self.sinks, self._fail) or interrupted
