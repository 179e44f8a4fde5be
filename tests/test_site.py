"""A site: several cameras (files and real RTSP servers) in one process, batched network calls."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import HeldCamera, KeepFrames, read_video, skip_without_openvino
from streamer.api import run
from streamer.cli import main
from streamer.config import RunConfig, load_config
from streamer.errors import ConfigError
from streamer.site import Site


class CountingBackend:
    """Identity network that records the batch size of every call."""

    multiple = 1

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.shape[0])
        return batch

    def close(self) -> None: ...


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingBackend:
    backend = CountingBackend()
    monkeypatch.setattr("streamer.backends.open_backend", lambda *a, **k: backend)
    return backend


def site_cfg(cameras: list[dict[str, Any]], **extra: Any) -> RunConfig:
    return load_config(RunConfig, None, {"cameras": cameras, "backend": {"threads": 1}, **extra})


def wait_for(cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def test_file_cameras_are_batched_and_each_gets_every_frame_in_order(
        clips: dict[str, Path], counting: CountingBackend, tmp_path: Path) -> None:
    cfg = site_cfg([{"name": f"c{i}", "source": str(clips["small"])} for i in range(3)],
                   sinks=[str(tmp_path / "{camera}.mp4")], batching={"max_batch": 4, "timeout_ms": 200})
    result = run(cfg)
    times_in, _, _ = read_video(clips["small"])
    assert not result.errors and result.frames_out == 3 * len(times_in)
    assert max(counting.batches) > 1 and sum(counting.batches) == 3 * len(times_in)
    assert result.batches < result.frames_out
    for i in range(3):  # no frame dropped, order and timing kept per camera
        times_out, _, _ = read_video(tmp_path / f"c{i}.mp4")
        assert times_out == pytest.approx(times_in, abs=1e-3)


def test_max_batch_1_means_one_frame_per_call(clips: dict[str, Path], counting: CountingBackend) -> None:
    cfg = site_cfg([{"name": f"c{i}", "source": str(clips["small"])} for i in range(2)],
                   batching={"max_batch": 1})
    result = run(cfg)
    assert result.frames_out == 24 and set(counting.batches) == {1}


def test_cameras_of_other_sizes_or_models_get_their_own_calls(clips: dict[str, Path],
                                                               counting: CountingBackend) -> None:
    cfg = site_cfg([{"name": "a", "source": str(clips["small"])},
                    {"name": "b", "source": str(clips["small"])},
                    {"name": "c", "source": str(clips["odd"])}],
                   batching={"max_batch": 4, "timeout_ms": 200})
    result = run(cfg)
    assert result.cameras["c"].frames_out == 6 and result.cameras["a"].frames_out == 12
    assert sum(counting.batches) == 30  # 96x64 frames never share a call with 75x51 ones


def test_a_broken_camera_is_reported_and_the_others_finish(clips: dict[str, Path],
                                                           counting: CountingBackend, tmp_path: Path) -> None:
    cfg = site_cfg([{"name": "good", "source": str(clips["small"])},
                    {"name": "gone", "source": str(tmp_path / "missing.mp4")}])
    result = run(cfg)
    assert result.cameras["good"].frames_out == 12
    assert "file not found" in result.errors["gone"] and "good" not in result.errors


def test_one_file_sink_for_two_cameras_is_refused(clips: dict[str, Path], counting: CountingBackend,
                                                  tmp_path: Path) -> None:
    """Files, loop recordings and stream URLs alike: refused with the config, before anything opens."""
    cameras = [{"name": f"c{i}", "source": str(clips["small"])} for i in range(2)]
    with pytest.raises(ConfigError, match=r"same\.mp4: this file is written twice \(by cameras c0 and c1; "
                                          r"e\.g\. put \{camera\} in the name\)"):
        site_cfg(cameras, sinks=[str(tmp_path / "same.mp4")])
    with pytest.raises(ConfigError, match=r"same: this stream is published twice \(by cameras c0 and c1; "
                                          r"e\.g\. put \{camera\} in the name\)"):
        site_cfg(cameras, sinks=["rtsp://127.0.0.1:9/same"])
    loop = {"url": str(tmp_path / "loop.mp4"), "segment_s": 60, "keep": 3}  # each would delete the other's
    with pytest.raises(ConfigError, match=r"loop\.mp4: this file is written twice"):
        site_cfg(cameras, sinks=[loop])
    assert len(site_cfg(cameras, sinks=["null", "view", {**loop, "url": str(tmp_path / "{camera}.mp4")}])
               .camera_list()) == 2


@pytest.mark.parametrize("first, second", [
    ("rtsp-serve://127.0.0.1:8554/x", "rtsp-serve://127.0.0.1/x"),  # the default port
    ("rtsp-serve://localhost:8554/x", "rtsp-serve://127.0.0.1:8554/x"),
    ("rtsp-serve://127.0.0.1:8554", "rtsp-serve://127.0.0.1:8554/clean"),  # the default path
    ("rtsp://127.0.0.1/x", "rtsp://user:pw@localhost:554/x"),  # a push: default port, login
])
def test_one_stream_written_two_ways_is_refused_with_the_config(first: str, second: str) -> None:
    """The config compared URLs as written while the sink pool keys servers by host:port and path:
    both passed the check, then camera b failed at run time ("this path is already served")."""
    cameras = [{"name": "a", "source": "rtsp://127.0.0.1:9/a", "sinks": [first]},
               {"name": "b", "source": "rtsp://127.0.0.1:9/b", "sinks": [second]}]
    with pytest.raises(ConfigError, match=r"this stream is published twice \(by cameras a and b"):
        site_cfg(cameras)
    cameras[1]["sinks"] = [second.replace("/x", "/y").replace("/clean", "/other")]
    assert len(site_cfg(cameras).camera_list()) == 2


@pytest.mark.parametrize("text, msg", [
    ("sinks: [null]\n", "source: Field required"),
    ("source: {url: a.mp4}\ncameras: [{name: a, source: b.mp4}]\n", "either `source:`"),
    ("cameras: [{name: a, source: b.mp4}, {name: a, source: c.mp4}]\n", "a repeats"),
    ("cameras: [{name: a, source: b.mp4, tiling: {}}]\n", "cameras.0.tiling: unknown key"),
])
def test_site_config_errors_are_one_line(tmp_path: Path, text: str, msg: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load_config(RunConfig, path)


def test_shipped_site_config_is_valid() -> None:
    cfg = load_config(RunConfig, Path(__file__).parents[1] / "configs" / "site.yaml")
    cams = cfg.camera_list()
    assert len(cams) >= 2 and all(c.sinks for c in cams)
    assert {c.preprocess.resize for c in cams if c.preprocess} >= {"320x240", "480x360"}


def test_one_view_server_shows_every_camera(clips: dict[str, Path], counting: CountingBackend) -> None:
    cfg = site_cfg([{"name": n, "source": {"url": str(clips["small"]), "loop": True, "realtime": True}}
                    for n in ("left", "right")], sinks=["view:0"])
    stop = threading.Event()
    site = Site(cfg, stop=stop)
    runner = threading.Thread(target=site.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: "view:0" in site.pool.shared and all(
            site.stats.camera(n).frames_out > 2 for n in ("left", "right")))
        view = site.pool.shared["view:0"]
        for cam in ("left", "right"):
            with urllib.request.urlopen(f"{view.url}snapshot?camera={cam}", timeout=10) as resp:
                assert resp.status == 200 and resp.read(2) == b"\xff\xd8"  # a JPEG
        with urllib.request.urlopen(f"{view.url}api/stats", timeout=10) as resp:
            rows = json.load(resp)["cameras"]
        assert {r["name"] for r in rows if r["streaming"]} == {"left", "right"}
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()


def test_killed_rtsp_camera_does_not_stall_the_others(rtsp_server: Any, clips: dict[str, Path],
                                                      fast_weights: Path) -> None:
    """Two RTSP cameras and a paced file in one site; one server dies: the others keep counting,
    the lost one reconnects once its server is back."""
    from streamer.testing.rtsp_server import RtspTestServer

    other = RtspTestServer(path="/other")
    other.start()
    live = {"reconnect": {"initial_s": 0.2, "max_s": 0.5}, "timeout_s": 2.0}
    cfg = RunConfig.model_validate({
        "cameras": [{"name": "dies", "source": {"url": rtsp_server.url, **live}},
                    {"name": "stays", "source": {"url": other.url, **live}},
                    {"name": "file", "source": {"url": str(clips["small"]), "loop": True, "realtime": True}}],
        "model": {"name": str(fast_weights), "arch": "fast"}, "backend": {"threads": 1},
        "preprocess": {"resize": "96x64"}, "stats_every_s": 0})
    stop = threading.Event()
    site = Site(cfg, stop=stop)
    runner = threading.Thread(target=site.run, daemon=True)
    runner.start()
    out = lambda cam: site.stats.camera(cam).frames_out  # noqa: E731
    try:
        wait_for(lambda: all(out(c) > 3 for c in ("dies", "stays", "file")))
        rtsp_server.stop()
        wait_for(lambda: not site.stats.camera("dies").up)
        for _ in range(2):  # the first round flushes frames queued before the kill
            frozen, before = out("dies"), {c: out(c) for c in ("stays", "file")}
            wait_for(lambda: out("stays") > before["stays"] + 10 and out("file") > before["file"] + 5)
        assert not site.stats.camera("dies").up and out("dies") == frozen
        rtsp_server.start()
        wait_for(lambda: site.stats.camera("dies").reconnects >= 1 and out("dies") > frozen + 3)
    finally:
        stop.set()
        runner.join(30)
        other.stop()
    assert not runner.is_alive()


def test_streamer_run_site_config_prints_each_camera(clips: dict[str, Path], fast_weights: Path,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "site.yaml"
    cfg.write_text(f"cameras:\n  - {{name: a, source: {clips['small']}}}\n  - {{name: b, source: {clips['small']}}}\n"
                   f"sinks: ['{tmp_path}/{{camera}}.mkv']\nmodel: {{name: {fast_weights}, arch: fast}}\n"
                   "backend: {threads: 1}\n")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "24 frames" in text and "a: in 12, out 12" in text and "b: in 12, out 12" in text
    assert len(read_video(tmp_path / "b.mkv")[0]) == 12


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fixed_size_export_runs_every_camera_of_a_group(backend: str, clips: dict[str, Path],
                                                        fast_weights: Path, tmp_path: Path) -> None:
    """`export --size` fixes the batch at 1 too: two same-size cameras take turns, not one 2-frame call."""
    if backend == "openvino":
        skip_without_openvino()
    from streamer.export import ExportRequest, export

    onnx = tmp_path / "fast-96x64.onnx"
    export(ExportRequest(model="fast", format="onnx", precision="fp32", output=onnx, weights=fast_weights,
                         size=(64, 96)))
    cfg = site_cfg([{"name": f"c{i}", "source": str(clips["small"])} for i in range(2)],
                   sinks=[str(tmp_path / "{camera}.mp4")], model={"name": str(onnx)},
                   backend={"kind": backend, "threads": 1}, batching={"max_batch": 4, "timeout_ms": 200})
    result = run(cfg)
    assert not result.errors and result.frames_out == 24 and result.batches == 24
    for i in range(2):
        assert len(read_video(tmp_path / f"c{i}.mp4")[0]) == 12


def test_ctrl_c_while_a_site_closes_its_sinks_is_retried_and_reported(clips: dict[str, Path],
                                                                       counting: CountingBackend) -> None:
    class CtrlCOnce:
        def __init__(self) -> None:
            self.calls = self.frames = 0

        def write(self, frame: Any) -> None:
            self.frames += 1

        def close(self) -> None:
            self.calls += 1
            if self.calls == 1:
                raise KeyboardInterrupt

    site = Site(site_cfg([{"name": f"c{i}", "source": str(clips["small"])} for i in range(2)],
                         sinks=["view:0"]))
    sink = CtrlCOnce()
    site.pool.share("view:0", sink)  # one instance for both cameras, closed once
    result = site.run()
    assert result.interrupted and sink.calls == 2 and sink.frames == 24 and not result.errors


class InFlight:
    """A backend on the uint8 path (as torch and TensorRT on CUDA, OpenVINO), counting its calls
    started and not yet waited for."""

    def __init__(self, inner: Any, inflight: int) -> None:
        self.inner, self.inflight, self.multiple = inner, inflight, inner.multiple
        self.uint8_io = True
        self.open = self.most = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.inner(batch)

    def start_uint8(self, images: np.ndarray) -> Any:
        self.open += 1
        self.most = max(self.most, self.open)
        return self.inner.start_uint8(images)

    def wait_uint8(self, handle: Any) -> np.ndarray:
        self.open -= 1
        return self.inner.wait_uint8(handle)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("kind", ["torch", "openvino"])
def test_backend_inflight_reaches_the_site_and_batches_overlap(kind: str, clips: dict[str, Path],
                                                               fast_weights: Path, monkeypatch) -> None:
    """backend.inflight: the next batch starts while one is in the network, on the uint8 path
    (colour conversion on the GPU for torch on CUDA; run here on the CPU). Every camera still gets
    every frame in order, equal to the float path's to ±1."""
    if kind == "openvino":
        skip_without_openvino()
    from conftest import assert_uint8_path_matches_float
    from streamer.backends import open_backend

    opened: list[InFlight] = []

    def open_in_flight(*args: Any, **kw: Any) -> InFlight:
        opened.append(InFlight(open_backend(*args, **kw), kw.get("inflight", 1)))
        return opened[-1]

    monkeypatch.setattr("streamer.backends.open_backend", open_in_flight)
    site = Site(site_cfg([{"name": f"c{i}", "source": str(clips["small"])} for i in range(2)],
                         sinks=["view:0"], model={"name": str(fast_weights), "arch": "fast"},
                         backend={"kind": kind, "threads": 1, "inflight": 2}, batching={"max_batch": 1}))
    keep = KeepFrames()
    site.pool.share("view:0", keep)
    result = site.run()
    assert not result.errors and result.frames_out == 24
    assert opened[0].inflight == 2 and opened[0].most == 2 and opened[0].open == 0
    with open_backend(str(fast_weights), kind, arch="fast", threads=1) as ref:  # the site closed its own
        for cam in ("c0", "c1"):
            frames = keep.got[cam]
            assert [f.index for f in frames] == list(range(12))
            assert_uint8_path_matches_float(ref, [f.image for f in frames], [f.original for f in frames])


def held_site(camera: HeldCamera, fast_weights: Path, monkeypatch: pytest.MonkeyPatch,
              backend: Callable[[Any], InFlight]) -> tuple[Site, KeepFrames, list[InFlight]]:
    """A site of one held camera on torch forced onto the uint8 path with 2 batches in flight."""
    from streamer.backends import open_backend

    opened: list[InFlight] = []

    def open_in_flight(*args: Any, **kw: Any) -> InFlight:
        opened.append(backend(open_backend(*args, **kw)))
        return opened[-1]

    monkeypatch.setattr("streamer.backends.open_backend", open_in_flight)
    monkeypatch.setattr("streamer.sources.source_from_config", lambda *a, **k: camera)
    site = Site(site_cfg([{"name": camera.name, "source": "rtsp://127.0.0.1:9/held"}], sinks=["view:0"],
                         model={"name": str(fast_weights), "arch": "fast"}, stats_every_s=0,
                         backend={"kind": "torch", "threads": 1, "inflight": 2}))
    keep = KeepFrames()
    site.pool.share("view:0", keep)
    return site, keep, opened


def test_a_batch_in_the_network_is_handed_on_without_waiting_for_the_next_frame(
        fast_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With backend.inflight 2, a submitted batch was handed on only when the next frame came:
    +55 ms latency at 10 fps (OpenVINO, 2 cameras), counted as network time, and a camera that
    went quiet kept its last frame until it sent another."""
    camera = HeldCamera("gate")
    site, keep, opened = held_site(camera, fast_weights, monkeypatch, lambda inner: InFlight(inner, 2))
    runner = threading.Thread(target=site.run, daemon=True)
    runner.start()
    try:
        camera.give(3)
        wait_for(lambda: len(keep.got.get("gate", [])) == 3)  # the last one too, no frame after it
    finally:
        site.stop.set()
        runner.join(30)
    assert [f.index for f in keep.got["gate"]] == [0, 1, 2] and opened[0].open == 0


class HeldCalls(InFlight):
    """Calls run on a worker thread and end once ``release`` is set; ``close`` notes how many
    were started and not waited for."""

    def __init__(self, inner: Any, inflight: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        super().__init__(inner, inflight)
        self.started, self.release = threading.Event(), threading.Event()
        self.workers = ThreadPoolExecutor(inflight)
        self.open_at_close: int | None = None

    def start_uint8(self, images: np.ndarray) -> Any:
        self.open += 1
        self.most = max(self.most, self.open)

        def run() -> np.ndarray:
            self.release.wait(60)
            return self.inner.wait_uint8(self.inner.start_uint8(images))

        future = self.workers.submit(run)
        self.started.set()
        return future

    def wait_uint8(self, handle: Any) -> np.ndarray:
        self.open -= 1
        return handle.result()

    def close(self) -> None:
        self.open_at_close = self.open
        self.release.set()
        self.workers.shutdown()
        super().close()


def test_stop_waits_for_calls_in_the_network_before_closing_the_backend(
        fast_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On stop the batcher dropped its pending batches without waiting for their calls, and
    backend.close() came while they ran (OpenVINO frees its compiled models there)."""
    camera = HeldCamera("gate")
    site, keep, opened = held_site(camera, fast_weights, monkeypatch, lambda inner: HeldCalls(inner, 2))
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(site.run()), daemon=True)
    runner.start()
    try:
        wait_for(lambda: bool(opened))
        camera.give(1)
        assert opened[0].started.wait(30)  # the frame is in the network
        site.stop.set()
        opened[0].release.set()  # the call ends after the stop
    finally:
        site.stop.set()
        runner.join(30)
    assert result and not result[0].errors and opened[0].open_at_close == 0


def test_stop_during_the_first_call_waits_for_it_before_closing_the_backend(
        clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the first batch, nothing timed yet: the wait for calls was 0 s, so the backend
    closed with the call still in the network (the interpreter could abort at exit). It waits for
    the call now, up to the cap, and no longer than the call takes. (A site's `stop` event waits
    for every thread anyway: only Ctrl-C cut this short.)"""
    import _thread

    import streamer.pipeline as pipeline_mod
    from streamer.sources.file import FileSource

    monkeypatch.setattr(pipeline_mod, "STOP_GRACE_S", 0.2)
    monkeypatch.setattr(pipeline_mod, "STOP_CALLS_MAX_S", 30.0)
    monkeypatch.setattr(FileSource, "timeout_s", 0.1, raising=False)  # a file has none: 5 s
    events, started = [], threading.Event()

    class SlowFirst(CountingBackend):
        def __call__(self, batch: np.ndarray) -> np.ndarray:
            events.append("started")
            started.set()
            time.sleep(2.0)
            events.append("done")
            return batch

        def close(self) -> None:
            events.append("closed")

    monkeypatch.setattr("streamer.backends.open_backend", lambda *a, **k: SlowFirst())
    site = Site(site_cfg([{"name": "first", "source": str(clips["small"])}]))
    before = set(threading.enumerate())
    threading.Thread(target=lambda: started.wait(30) and _thread.interrupt_main(), daemon=True).start()
    t0 = time.monotonic()
    # Python's own Ctrl-C handler: an in-process CLI test that was stopped leaves the CLI's
    # (deaf to repeats until the process exits, as a stopped command should be)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = site.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.interrupted and events == ["started", "done", "closed"] and not result.errors
    assert not [t.name for t in set(threading.enumerate()) - before if t.name.startswith("streamer-")]
    assert time.monotonic() - t0 < 15  # the call's 2 s, not the 30 s cap


def test_healthz_is_503_until_every_camera_is_up(clips: dict[str, Path], counting: CountingBackend) -> None:
    """A camera still connecting (here: a server that takes the connection and says nothing) had
    not reported yet, so /healthz said 200 ok with only the file camera known."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        cfg = site_cfg([{"name": "file", "source": {"url": str(clips["small"]), "loop": True, "realtime": True}},
                        {"name": "slow", "source": {"url": f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam",
                                                    "timeout_s": 20}}],
                       sinks=["view:0"], stats_every_s=0)
        stop = threading.Event()
        site = Site(cfg, stop=stop)
        runner = threading.Thread(target=site.run, daemon=True)
        runner.start()
        try:
            wait_for(lambda: "view:0" in site.pool.shared and site.stats.camera("file").frames_out > 2)
            url = site.pool.shared["view:0"].url
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{url}healthz", timeout=10)
            assert err.value.code == 503 and err.value.read() == b"not up yet: slow\n"
            with urllib.request.urlopen(f"{url}metrics", timeout=10) as resp:
                metrics = resp.read().decode()
            assert 'streamer_source_up{camera="slow"} 0.0' in metrics
            assert 'streamer_source_up{camera="file"} 1.0' in metrics
        finally:
            stop.set()
            silent.close()  # the pending connection is reset: the camera's open ends now
            runner.join(30)
    assert not runner.is_alive()


def test_a_finished_file_camera_reads_ended_not_up(clips: dict[str, Path], counting: CountingBackend) -> None:
    """The periodic line said "0.0 fps … up" for a file that had finished while the others ran on."""
    cfg = site_cfg([{"name": "short", "source": str(clips["small"])},
                    {"name": "live", "source": {"url": str(clips["small"]), "loop": True, "realtime": True}}],
                   stats_every_s=0)
    stop = threading.Event()
    site = Site(cfg, stop=stop)
    runner = threading.Thread(target=site.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: site.stats.camera("short").frames_out == 12 and site.stats.camera("live").frames_out > 2)
        wait_for(lambda: site.stats_lines()[0].endswith(", ended"), 10)
        short, live = site.stats_lines()
        assert short.startswith("short: ") and "out 12" in short
        assert live.startswith("live: ") and live.endswith(", up")
    finally:
        stop.set()
        runner.join(30)


def test_summary_says_which_camera_was_down_at_the_end(clips: dict[str, Path], counting: CountingBackend,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A camera down when the run was stopped read `ok` in the summary."""
    import socket

    from streamer.commands.run import _summary

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = site_cfg([{"name": "file", "source": {"url": str(clips["small"]), "loop": True, "realtime": True}},
                    {"name": "gate", "source": {"url": f"rtsp://127.0.0.1:{port}/cam", "timeout_s": 2,
                                                "reconnect": {"retry_first_connect": True}}}],
                   stats_every_s=0)
    stop = threading.Event()
    site = Site(cfg, stop=stop)

    def stop_once_it_failed() -> None:
        try:
            wait_for(lambda: bool(site.stats.camera("gate").last_error and site.stats.camera("file").frames_out))
        finally:
            stop.set()

    threading.Thread(target=stop_once_it_failed, daemon=True).start()
    result = site.run()
    assert _summary(cfg, result) == 0  # stopped on purpose: no failure; the line says what was down
    lines = capsys.readouterr().out.splitlines()
    gate = next(line for line in lines if line.startswith("  gate: "))
    assert gate.endswith(", down at the end (Connection refused)"), gate
    assert next(line for line in lines if line.startswith("  file: ")).endswith(", ok")
