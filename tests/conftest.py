"""Shared fixtures: small real clips made with PyAV once per session, random-weight models, and a
real RTSP camera (gst-rtsp-server) on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from streamer.frame import Frame

REPO = Path(__file__).resolve().parents[1]
DEMO_CLIP = REPO / "assets" / "demo.mp4"


def make_clip(path: Path, *, frames: int = 12, width: int = 96, height: int = 64, fps: int = 10,
              audio: bool = False, start_pts: int = 0, pix_fmt: str = "yuv420p") -> Path:
    """A moving colour gradient with explicit PTS (so tests can check they survive)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = Fraction(1, fps)
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=16000)
            astream.layout = "mono"
        yy, xx = np.mgrid[0:height, 0:width]
        samples_per_frame = 16000 // fps
        for i in range(frames):
            img = np.stack([(xx * 255 // width + 8 * i) % 256, (yy * 255 // height) % 256,
                            np.full_like(xx, (20 * i) % 256)], axis=-1).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = start_pts + i
            for packet in stream.encode(vf):
                out.mux(packet)
            if astream is not None:
                t = (np.arange(samples_per_frame) + i * samples_per_frame) / 16000
                pcm = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
                af.sample_rate = 16000
                af.pts = i * samples_per_frame
                for packet in astream.encode(af):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if astream is not None:
            for packet in astream.encode(None):
                out.mux(packet)
    return path


def read_video(path: Path) -> tuple[list[float], tuple[int, int], float]:
    """(frame times in s, (width, height), container duration in s) of a video file."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = [f.time for f in c.decode(s)]
        size = (s.codec_context.width, s.codec_context.height)
        duration = c.duration / av.time_base if c.duration else 0.0
    return times, size, duration


def assert_uint8_path_matches_float(backend, via_uint8: list[np.ndarray], images: list[np.ndarray]) -> None:
    """Frames the uint8 path (``FrameRestorer`` with ``uint8_io``) gave equal the float path's,
    run on the same backend, to ±1 and at the input's size."""
    from streamer.preprocess.color import from_batch, to_batch
    from streamer.preprocess.tiles import run_padded

    for u, im in zip(via_uint8, images, strict=True):
        f = from_batch(run_padded(backend, to_batch([im]), backend.multiple))[0]
        assert u.shape == im.shape and u.dtype == np.uint8
        assert np.abs(u.astype(int) - f.astype(int)).max() <= 1


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "small": make_clip(root / "small.mp4"),
        "odd": make_clip(root / "odd.mp4", width=75, height=51, frames=6, pix_fmt="yuv444p"),
        "audio": make_clip(root / "audio.mp4", frames=20, audio=True),
        "offset": make_clip(root / "offset.mp4", frames=8, start_pts=5),
    }


@pytest.fixture(scope="session")
def fast_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Randomly initialised FastNet weights: tests check plumbing, not trained quality."""
    import torch

    from streamer.models import get_spec
    from streamer.models.weights import save_weights

    torch.manual_seed(0)
    return save_weights(get_spec("fast").build(), tmp_path_factory.mktemp("w") / "fast.safetensors")


@pytest.fixture(scope="session")
def gst_rtsp_available() -> None:
    from streamer.testing.rtsp_server import gst_rtsp_missing

    why = gst_rtsp_missing()
    if why:
        pytest.skip(why)


@pytest.fixture
def rtsp_server(gst_rtsp_available: None):
    """A live RTSP camera at ``server.url``; ``server.stop()`` / ``server.start()`` keep the port."""
    from streamer.testing.rtsp_server import RtspTestServer

    server = RtspTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class HeldCamera:
    """A live camera whose frames come when the test gives them, and then nothing more."""

    live = True
    total_frames = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.given = 0
        self._closed = threading.Event()

    def give(self, n: int) -> None:
        for _ in range(n):
            image = np.full((64, 96, 3), 10 * self.given % 256, np.uint8)
            self.frames.put(Frame(image, self.given / 10, self.given, self.name, captured_s=time.monotonic()))
            self.given += 1

    def __iter__(self) -> Any:
        while not self._closed.is_set():
            try:
                yield self.frames.get(timeout=0.05)
            except queue.Empty:
                continue

    def close(self) -> None:
        self._closed.set()


class KeepFrames:
    """A sink that keeps what it is given, by camera."""

    def __init__(self) -> None:
        self.got: dict[str, list[Frame]] = {}

    def write(self, frame: Frame) -> None:
        self.got.setdefault(frame.source, []).append(frame)

    def close(self) -> None: ...


def skip_without_openvino() -> None:
    """Skip when the openvino extra is missing, without importing it here: a bare ``import
    openvino`` sends its usage telemetry; the backend imports it with that switched off."""
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("the openvino extra is not installed")


def view_frame(i: int, cam: str = "front") -> Frame:
    """For the web view's tests: a moving gradient so consecutive frames differ (160x96); the
    original is the inverted picture."""
    x = (np.arange(160)[None, :] + 8 * i) % 256
    y = np.arange(96)[:, None] * 2
    image = np.stack(np.broadcast_arrays(x, y, 255 - x), axis=-1).astype(np.uint8)
    return Frame(image, i / 25, i, cam, captured_s=time.monotonic(), original=255 - image)


class ViewFeeder:
    """Writes ``view_frame``s of each camera into a sink at ~25 fps from its own thread, as the
    pipeline does (the first ones on entering)."""

    def __init__(self, sink: Any, cams: tuple[str, ...] = ("front",)) -> None:
        self.sink, self.cams = sink, cams
        self._stop = threading.Event()
        self.written = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            for cam in self.cams:
                self.sink.write(view_frame(i, cam))
            self.written += 1
            i += 1
            time.sleep(0.04)

    def __enter__(self) -> ViewFeeder:
        for cam in self.cams:
            self.sink.write(view_frame(0, cam))
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class IdentityBackend:
    """A network that hands frames back unchanged: for tests of what happens around it."""
    multiple = 1

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def close(self) -> None: ...


@pytest.fixture
def identity_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every backend a run opens is an ``IdentityBackend``."""
    monkeypatch.setattr("streamer.backends.open_backend", lambda *a, **k: IdentityBackend())
