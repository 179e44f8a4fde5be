from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest

from conftest import DEMO_CLIP, HeldCamera, read_video, skip_without_openvino
from streamer.api import run
from streamer.config import RunConfig
from streamer.errors import SinkError
from streamer.frame import Frame
from streamer.pipeline import Pipeline, put_latest
from streamer.preprocess.frames import FrameRestorer
from streamer.sinks.base import close_sinks
from streamer.sinks.file import FileSink
from streamer.sinks.null import NullSink
from streamer.sources import open_source
from streamer.stats import STAGES, RunStats


def test_demo_clip_end_to_end(fast_weights: Path, tmp_path: Path) -> None:
    """The real path on the bundled clip: every frame out, same timing, both outputs decode;
    `{camera}` in a path is the source's name."""
    cfg = RunConfig.model_validate({
        "source": {"url": str(DEMO_CLIP), "name": "demo"},
        "sinks": [str(tmp_path / "{camera}.mp4"), {"url": str(tmp_path / "sbs.mkv"), "side_by_side": True}],
        "model": {"name": str(fast_weights), "arch": "fast"},
        "backend": {"kind": "torch", "threads": 1},
        "preprocess": {"resize": "192x144"},  # keeps the CPU cost of the test small
    })
    progress: list[tuple[int, int | None]] = []
    result = run(cfg, on_progress=lambda n, total: progress.append((n, total)))
    times_in, _, dur_in = read_video(DEMO_CLIP)
    times_out, size, dur_out = read_video(tmp_path / "demo.mp4")
    assert result.frames_in == result.frames_out == len(times_in) == 100
    assert result.dropped == 0 and not result.interrupted
    assert times_out == pytest.approx(times_in, abs=1e-3)
    assert dur_out == pytest.approx(dur_in, abs=1e-3) and size == (192, 144)
    sbs_times, sbs_size, _ = read_video(tmp_path / "sbs.mkv")
    assert len(sbs_times) == 100 and sbs_size == (384, 144)
    assert progress[-1] == (100, 100)
    for stage in STAGES:
        assert result.stats.registry.get_sample_value(
            "streamer_stage_seconds_count", {"camera": "demo", "stage": stage}) == 100


def test_openvino_two_frames_in_flight_keeps_order_and_pixels(clips: dict[str, Path],
                                                              fast_weights: Path) -> None:
    """backend.inflight = 2: frames overlap in the network yet come out in order, each equal to
    what the one-at-a-time path makes of it."""
    skip_without_openvino()
    from streamer.backends import open_backend

    class Keep(NullSink):
        def __init__(self) -> None:
            super().__init__()
            self.got: list[Frame] = []

        def write(self, frame: Frame) -> None:
            super().write(frame)
            self.got.append(frame)

    outs = {}
    for inflight in (1, 2):
        sink = Keep()
        with open_backend(str(fast_weights), "openvino", arch="fast", threads=1, inflight=inflight) as b:
            restorer = FrameRestorer(b)
            assert restorer.depth == inflight
            result = Pipeline(open_source(str(clips["small"])), restorer, [sink]).run()
        assert result.frames_out == 12 and [f.index for f in sink.got] == list(range(12))
        outs[inflight] = sink.got
    for a, b in zip(outs[1], outs[2]):
        assert (a.image == b.image).all()


class _TwoInFlight:
    """A restorer that keeps two frames in the network (OpenVINO's, torch CUDA's ``inflight: 2``);
    ``open`` counts calls started and not finished."""

    depth = 1 + 1

    def __init__(self) -> None:
        self.open = 0

    def submit(self, frame: Frame, timer=None) -> Frame:
        self.open += 1
        return frame

    def finish(self, frame: Frame, timer=None) -> Frame:
        self.open -= 1
        return frame


def test_frames_in_flight_are_handed_on_without_waiting_for_the_next_frame() -> None:
    """With two frames in flight, a camera's frame came out only when the next one came in: a
    frame period of latency, and a camera that went quiet kept its last frame."""
    camera, restorer, out = HeldCamera("gate"), _TwoInFlight(), []

    class Keep(NullSink):
        def write(self, frame: Frame) -> None:
            out.append(frame.index)

    stop = threading.Event()
    pipeline = Pipeline(camera, restorer, [Keep()], stop=stop)  # type: ignore[arg-type]
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    try:
        camera.give(3)
        deadline = time.monotonic() + 20
        while len(out) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        runner.join(30)
    assert out == [0, 1, 2] and restorer.open == 0


def test_max_frames_stops_early(clips: dict[str, Path], tmp_path: Path) -> None:
    sink = NullSink()
    src = open_source(str(clips["small"]), loop=True)
    result = Pipeline(src, FrameRestorer(None), [sink], max_frames=25).run()
    assert result.frames_out == sink.frames == 25


def test_a_push_that_fails_on_the_first_frame_leaves_no_one_frame_recording(clips: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    """Recordings are written after network sinks, so a network sink that fails on the first
    frame stops the run before the file holds it (a 1-frame loop segment would count against keep)."""
    from streamer.sinks import open_sink

    class DeadPush:
        def write(self, frame: Frame) -> None:
            raise SinkError("rtsp-serve 127.0.0.1:8554/x: cannot serve this path (no answer)")

        def close(self) -> None:
            pass

    recording = open_sink(str(tmp_path / "cam.mp4"), segment_s=60)
    with pytest.raises(SinkError, match="cannot serve this path"):
        Pipeline(open_source(str(clips["small"])), FrameRestorer(None), [recording, DeadPush()]).run()
    assert list(tmp_path.iterdir()) == []


def test_stop_event_ends_a_live_run(clips: dict[str, Path]) -> None:
    stop = threading.Event()
    src = open_source(str(clips["small"]), loop=True, realtime=True)
    sink = NullSink()
    pipe = Pipeline(src, FrameRestorer(None), [sink], stop=stop, stats_every_s=0.05)
    threading.Timer(0.5, stop.set).start()
    result = pipe.run()
    assert 1 <= result.frames_out <= 10  # 10 fps for ~0.5 s
    assert "fps" in pipe.stats.line(pipe.cam)


def test_camera_paced_file_counts_as_up(clips: dict[str, Path]) -> None:
    """The looping demo clip of `make live` paces like a camera but reports no connection state
    of its own: the pipeline must mark it up, or /healthz says "down: demo" forever."""
    stop = threading.Event()
    src = open_source(str(clips["small"]), "demo", loop=True, realtime=True)
    pipe = Pipeline(src, FrameRestorer(None), [NullSink()], stop=stop, stats_every_s=0.05)
    threading.Timer(0.4, stop.set).start()
    assert pipe.run().frames_out >= 1
    assert pipe.stats.camera("demo").up and pipe.stats.down_cameras() == []
    assert "down" not in pipe.stats.line("demo")


def test_the_camera_is_listed_as_not_up_yet_before_it_delivers(clips: dict[str, Path]) -> None:
    """/healthz and /metrics know the camera from the start (503, source_up 0), not only once it
    first reports."""
    pipe = Pipeline(open_source(str(clips["small"]), "door"), FrameRestorer(None), [NullSink()])
    assert pipe.stats.down_cameras() == ["door"]
    assert pipe.stats.registry.get_sample_value("streamer_source_up", {"camera": "door"}) == 0
    assert pipe.stats.waiting_cameras() == ["door"]
    pipe.run()
    assert pipe.stats.waiting_cameras() == [] and pipe.stats.camera("door").up


def test_decode_stage_leaves_out_the_wait_for_the_next_frame(clips: dict[str, Path]) -> None:
    """A 10 fps camera-paced file: `decode` in /metrics read ~100 ms a frame (the pacing wait).
    Not a speed check: decoding a 96x64 frame is a small part of the 100 ms between frames."""
    stats = RunStats()
    src = open_source(str(clips["small"]), "door", realtime=True)
    result = Pipeline(src, FrameRestorer(None), [NullSink()], stats=stats).run()
    total = stats.registry.get_sample_value("streamer_stage_seconds_sum", {"camera": "door", "stage": "decode"})
    count = stats.registry.get_sample_value("streamer_stage_seconds_count", {"camera": "door", "stage": "decode"})
    assert count == result.frames_in == 12
    assert 0 < total < 0.25 * 11 / 10  # the frames span 1.1 s


def test_summary_of_a_camera_down_at_the_end_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """One camera, stopped while it could not be reached: the summary gave no hint."""
    import socket

    from streamer.commands.run import _summary

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = RunConfig.model_validate({
        "source": {"url": f"rtsp://127.0.0.1:{port}/cam", "name": "gate", "timeout_s": 2,
                   "reconnect": {"retry_first_connect": True}},
        "sinks": ["null"], "model": {"name": "fast"}, "backend": {"threads": 1}, "stats_every_s": 0})
    stats, stop = RunStats(), threading.Event()

    def stop_once_it_failed() -> None:
        end = time.monotonic() + 30
        while not (stats.camera("gate").last_error or stop.wait(0.05)) and time.monotonic() < end:
            pass
        stop.set()

    threading.Thread(target=stop_once_it_failed, daemon=True).start()
    result = run(cfg, stats=stats, stop=stop)
    assert _summary(cfg, result) == 0
    assert "gate: down at the end (Connection refused)" in capsys.readouterr().out.splitlines()


class _Failing:
    def __init__(self) -> None:
        self.closed = False

    def write(self, frame: Frame) -> None:
        raise SinkError("broken.mp4: disk full")

    def close(self) -> None:
        self.closed = True


def test_sink_error_surfaces_and_everything_is_closed(clips: dict[str, Path]) -> None:
    failing, ok = _Failing(), NullSink()
    with pytest.raises(SinkError, match="disk full"):
        Pipeline(open_source(str(clips["small"])), FrameRestorer(None), [ok, failing]).run()
    assert failing.closed


def test_put_latest_drops_oldest() -> None:
    q: queue.Queue = queue.Queue(2)
    assert put_latest(q, 1) == 0 and put_latest(q, 2) == 0
    assert put_latest(q, 3) == 1
    assert [q.get_nowait(), q.get_nowait()] == [2, 3]


def test_slow_network_on_live_source_drops_and_counts(clips: dict[str, Path]) -> None:
    """Latest frame wins: a 10 fps camera into a 4 fps network drops frames, never blocks."""
    import time

    class Slow:
        multiple = 1

        def __call__(self, batch):
            time.sleep(0.25)
            return batch

        def close(self) -> None: ...

    stop = threading.Event()
    src = open_source(str(clips["small"]), loop=True, realtime=True)
    pipe = Pipeline(src, FrameRestorer(Slow()), [NullSink()], stop=stop, queue_frames=1)
    threading.Timer(2.0, stop.set).start()
    result = pipe.run()
    assert result.dropped > 0
    assert result.frames_in >= result.frames_out + result.dropped


def test_stopping_waits_for_a_slow_network_call_in_progress(clips: dict[str, Path]) -> None:
    """An 8K frame on a CPU takes half a minute: max_frames reached while the next call ran gave up
    on it after the source's timeout + 5 s, and the thread left in torch aborted the interpreter
    at exit ("terminate called without an active exception", exit 134 after a good run)."""
    calls = []

    class Slow:
        multiple = 1

        def __call__(self, batch):
            calls.append("started")
            time.sleep(5.5)  # longer than the 0.1 s timeout + 5 s it was given
            calls.append("done")
            return batch

        def close(self) -> None: ...

    src = open_source(str(clips["small"]))
    src.timeout_s = 0.1  # type: ignore[attr-defined]  # a file has none: 5 s
    pipe = Pipeline(src, FrameRestorer(Slow()), [NullSink()], max_frames=1)
    result = pipe.run()
    assert result.frames_out == 1 and len(calls) >= 3  # the second frame's call had started
    assert calls[-1] == "done"  # and was waited for
    assert not [t for t in threading.enumerate() if t.name.startswith("streamer-main-")]


def test_stopping_waits_for_network_calls_at_most_a_bound(clips: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A call that hangs (a stuck GPU) is not waited for (depth + 1) x the slowest call so far: a
    first call's warm-up of minutes kept the stop (and Ctrl-C, noted, not obeyed) waiting as long."""
    import streamer.pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "STOP_GRACE_S", 0.5)
    monkeypatch.setattr(pipeline_mod, "STOP_CALLS_MAX_S", 1.0)
    release = threading.Event()
    calls = []

    class Stuck:
        multiple = 1

        def __call__(self, batch):
            calls.append(1)
            if len(calls) > 1:
                release.wait(30)
            return batch

        def close(self) -> None: ...

    src = open_source(str(clips["small"]))
    src.timeout_s = 0.1  # type: ignore[attr-defined]
    stats = RunStats()
    stats.slowest_call_s = 600.0  # the first call's warm-up
    pipe = Pipeline(src, FrameRestorer(Stuck()), [NullSink()], stats=stats, max_frames=1)
    t0 = time.monotonic()
    try:
        assert pipe.run().frames_out == 1
        assert time.monotonic() - t0 < 10  # 0.1 + 0.5 + 1 s, not 2 x 600 s
    finally:
        release.set()


def test_stopping_waits_for_a_first_call_before_any_was_timed(clips: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped during the first call (a slow warm-up), nothing timed yet: the wait for calls was
    2 x 0 s, the thread was left in torch and the interpreter aborted at exit (134). It waits for
    the call now, up to the cap, and no longer than the call takes."""
    import streamer.pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "STOP_GRACE_S", 0.2)
    monkeypatch.setattr(pipeline_mod, "STOP_CALLS_MAX_S", 30.0)
    calls, started, stop = [], threading.Event(), threading.Event()

    class SlowFirst:
        multiple = 1

        def __call__(self, batch):
            calls.append("started")
            started.set()
            time.sleep(2.0)
            calls.append("done")
            return batch

        def close(self) -> None: ...

    src = open_source(str(clips["small"]))
    src.timeout_s = 0.1  # type: ignore[attr-defined]  # a file has none: 5 s
    threading.Thread(target=lambda: started.wait(30) and stop.set(), daemon=True).start()
    t0 = time.monotonic()
    result = Pipeline(src, FrameRestorer(SlowFirst()), [NullSink()], stop=stop).run()
    assert calls == ["started", "done"] and result.frames_out == 0  # waited for, stopped after it
    assert not [t for t in threading.enumerate() if t.name.startswith("streamer-main-")]
    assert time.monotonic() - t0 < 15  # the call's 2 s, not the 30 s cap


def test_stopping_waits_for_a_call_slower_than_any_before(clips: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The slowest call so far does not bound the one in progress (a bigger frame, another model's
    first batch): 3 fast calls, then one of 2 s, stopped during it, is waited for, not left
    running in the network thread (the wait was 2 x 0.01 s)."""
    import streamer.pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "STOP_GRACE_S", 0.2)
    calls, slow_started, stop = [], threading.Event(), threading.Event()

    class SlowerLater:
        multiple = 1

        def __call__(self, batch):
            calls.append("call")
            if len(calls) == 4:
                slow_started.set()
                time.sleep(2.0)
                calls.append("done")
            else:
                time.sleep(0.01)
            return batch

        def close(self) -> None: ...

    src = open_source(str(clips["small"]))
    src.timeout_s = 0.1  # type: ignore[attr-defined]
    threading.Thread(target=lambda: slow_started.wait(30) and stop.set(), daemon=True).start()
    t0 = time.monotonic()
    Pipeline(src, FrameRestorer(SlowerLater()), [NullSink()], stop=stop).run()
    assert "done" in calls
    assert not [t for t in threading.enumerate() if t.name.startswith("streamer-main-")]
    assert time.monotonic() - t0 < 15  # the call's 2 s, not the 10 s floor per call


def test_sigterm_finishes_the_file_and_exits_0(clips: dict[str, Path], fast_weights: Path,
                                               tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "cam.yaml"
    out = tmp_path / "out.mp4"
    cfg.write_text(f"source: {{url: {clips['small']}, loop: true, realtime: true}}\n"
                   f"sinks: [{out}]\nmodel: {{name: {fast_weights}, arch: fast}}\n"
                   "backend: {threads: 1}\nencoder: {keyframe_s: 0.5}\n")
    proc = subprocess.Popen([sys.executable, "-m", "streamer.cli", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and not (out.exists() and out.stat().st_size > 2000):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "(interrupted)" in stdout and "Traceback" not in stderr
    times, _, _ = read_video(out)
    assert len(times) >= 5 and all(b > a for a, b in zip(times, times[1:]))


class _CtrlCInClose(FileSink):
    """A Ctrl-C lands while the encoder is drained, after the first of its last packets."""

    def close(self) -> None:
        video = self._video
        if video is not None and not hasattr(self, "hit"):
            self.hit, real = True, video.container

            class Cut:
                def mux(self, packet: object) -> None:
                    video.container = real
                    real.mux(packet)
                    raise KeyboardInterrupt

            video.container = Cut()
        super().close()


def test_ctrl_c_while_closing_finishes_the_file_and_returns_interrupted(clips: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    sink = _CtrlCInClose(tmp_path / "out.mp4", fps=10)
    result = Pipeline(open_source(str(clips["small"])), FrameRestorer(None), [sink]).run()
    assert sink.hit and result.interrupted and result.frames_out == 12
    assert len(read_video(tmp_path / "out.mp4")[0]) == 12  # the frames still in the encoder too


class _Closing(NullSink):
    def __init__(self, interrupts: int = 0, error: Exception | None = None) -> None:
        super().__init__()
        self.interrupts, self.error, self.closed = interrupts, error, False

    def close(self) -> None:
        if self.interrupts:
            self.interrupts -= 1
            raise KeyboardInterrupt
        if self.error is not None:
            raise self.error
        self.closed = True


def test_close_sinks_retries_after_ctrl_c_and_a_third_goes_through() -> None:
    errors: list[Exception] = []
    sinks = [_Closing(interrupts=1), _Closing(error=SinkError("a.mp4: disk full")), _Closing(interrupts=1)]
    assert close_sinks(sinks, errors.append)
    assert sinks[0].closed and sinks[2].closed and [str(e) for e in errors] == ["a.mp4: disk full"]
    assert not close_sinks([_Closing()], errors.append)
    hung = _Closing(interrupts=5)
    with pytest.raises(KeyboardInterrupt):
        close_sinks([hung], errors.append)
    assert hung.interrupts == 2  # tried three times
