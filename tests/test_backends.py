from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_uint8_path_matches_float, skip_without_openvino
from streamer.backends import open_backend
from streamer.errors import ConfigError, EngineError, WeightsError
from streamer.models import list_specs


@pytest.mark.parametrize("kind", ["torch", "onnxruntime", "openvino"])
def test_backend_runs_fast_weights(kind: str, fast_weights: Path) -> None:
    if kind == "openvino":
        skip_without_openvino()
    backend = open_backend(str(fast_weights), kind, "cpu", threads=1)
    try:
        x = np.random.default_rng(0).random((2, 3, 48, 64), dtype=np.float32)
        y = backend(x)
        assert y.shape == x.shape and y.dtype == np.float32
        assert 0.0 <= y.min() and y.max() <= 1.0
        assert backend.multiple == 16
    finally:
        backend.close()


def test_torch_and_onnxruntime_agree(fast_weights: Path) -> None:
    x = np.random.default_rng(1).random((1, 3, 64, 80), dtype=np.float32)
    with open_backend(str(fast_weights), "torch", threads=1) as t, \
            open_backend(str(fast_weights), "onnxruntime", threads=1) as o:
        assert np.abs(t(x) - o(x)).max() < 1e-4


def test_torch_and_openvino_agree_and_int8_stays_close(tmp_path: Path, fast_weights: Path) -> None:
    skip_without_openvino()
    from streamer.export.calibration import CalibSet, hash_frames
    from streamer.export.onnx_export import export_onnx
    from streamer.export.ort_int8 import quantize_int8
    from streamer.models import get_spec
    from streamer.models.weights import load_weights

    rng = np.random.default_rng(2)
    x = rng.random((1, 3, 64, 80), dtype=np.float32)
    net = load_weights(get_spec("fast").build(), fast_weights)
    fp32 = export_onnx(net, tmp_path / "fast.onnx", shape=(1, 64, 80), dynamic=True, metadata={"multiple": 16})
    frames = [rng.integers(0, 256, (64, 80, 3), np.uint8) for _ in range(4)]
    int8 = quantize_int8(fp32, tmp_path / "fast-int8.onnx", CalibSet(frames, hash_frames(frames), "rng"))
    with open_backend(str(fast_weights), "torch", threads=1) as t, \
            open_backend(str(fp32), "openvino", threads=1) as o, \
            open_backend(str(int8), "openvino", threads=1) as q:
        ref = t(x)
        assert np.abs(ref - o(x)).max() < 1e-4
        assert o.multiple == 16  # read from the ONNX metadata
        err = np.abs(ref - q(x))
        assert err.mean() < 0.02 and q(x).shape == x.shape  # INT8: close, not equal
        assert o(x[:, :, :32, :48]).shape == (1, 3, 32, 48)  # a second shape compiles too


def test_onnx_file_path(tmp_path: Path, fast_weights: Path) -> None:
    from streamer.backends.ort_backend import onnx_bytes
    from streamer.models import get_spec
    from streamer.models.weights import load_weights

    onnx = tmp_path / "fast.onnx"
    onnx.write_bytes(onnx_bytes(load_weights(get_spec("fast").build(), fast_weights)))
    with open_backend(str(onnx), "onnxruntime") as b:
        assert b(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("spec", [s.name for s in list_specs()])
def test_registered_models_with_shipped_weights_or_clear_error(spec: str) -> None:
    path = next(s for s in list_specs() if s.name == spec).weights_path
    if path is None or not path.exists():
        with pytest.raises((WeightsError, ConfigError), match=spec):
            open_backend(spec, "torch")
        return
    from streamer.frame import Frame
    from streamer.preprocess.frames import FrameRestorer

    with open_backend(spec, "torch", threads=1) as b:
        image = np.random.default_rng(0).integers(0, 256, (29, 37, 3), np.uint8)
        out = FrameRestorer(b)(Frame(image, 0.0, 0)).image
        assert out.shape == image.shape and out.dtype == np.uint8


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown model 'fastt'; did you mean 'fast'"):
        open_backend("fastt", "torch")
    with pytest.raises(ConfigError, match="choose one of torch, onnxruntime, openvino, tensorrt"):
        open_backend("fast", "tflite")
    for backend in ("torch", "onnxruntime"):  # a missing file is that, whichever backend was asked
        with pytest.raises(EngineError, match="ONNX file not found"):
            open_backend(str(tmp_path / "m.onnx"), backend)
    bogus = tmp_path / "m2.onnx"
    bogus.write_text("not onnx")
    with pytest.raises(ConfigError, match="needs --backend onnxruntime"):
        open_backend(str(bogus), "torch")
    with pytest.raises(EngineError, match="onnxruntime cannot load it"):
        open_backend(str(bogus), "onnxruntime")
    if importlib.util.find_spec("openvino"):
        with pytest.raises(EngineError, match="m2.onnx: not a readable ONNX file"):
            open_backend(str(bogus), "openvino")
        with pytest.raises(EngineError, match="ONNX file not found"):
            open_backend(str(tmp_path / "m.onnx"), "openvino")
    pickled = tmp_path / "fast.pt"
    pickled.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(WeightsError, match="pickled weights are not loaded"):
        open_backend(str(pickled), "torch")
    with pytest.raises(WeightsError, match="not found"):
        open_backend(str(tmp_path / "fast.safetensors"), "torch")


def test_tensorrt_is_imported_only_on_use(tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed; covered by the export tests on a GPU")
    except ImportError:
        pass
    with pytest.raises(EngineError, match="tensorrt"):
        open_backend(str(tmp_path / "fast.engine"), "tensorrt", "cuda")


def test_cuda_request_without_gpu_is_clear(fast_weights: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(EngineError, match="no CUDA GPU"):
        open_backend(str(fast_weights), "torch", "cuda")


@pytest.mark.parametrize("model", ["fast", "eigen2013-dirt"])  # ends in DepthToSpace / does not
def test_openvino_uint8_path_matches_float_path(model: str, fast_weights: Path) -> None:
    """FrameRestorer hands OpenVINO uint8 frames; the result equals the float path's to ±1."""
    skip_without_openvino()
    from streamer.frame import Frame
    from streamer.preprocess.frames import FrameRestorer

    image = np.random.default_rng(3).integers(0, 256, (45, 70, 3), np.uint8)  # not multiples of 16
    with open_backend(str(fast_weights) if model == "fast" else model, "openvino", threads=1) as b:
        restorer = FrameRestorer(b)
        assert restorer.uint8  # the backend says so (uint8_io); tiling would take the float path
        assert not FrameRestorer(b, tile=32).uint8
        assert_uint8_path_matches_float(b, [restorer(Frame(image, 0.0, 0)).image], [image])


def _torch_uint8_vs_float(device: str, fast_weights: Path, inflight: int = 2) -> None:
    from streamer.frame import Frame
    from streamer.preprocess.frames import FrameRestorer

    images = [np.random.default_rng(k).integers(0, 256, (45, 70, 3), np.uint8) for k in range(3)]
    with open_backend(str(fast_weights), "torch", device, inflight=inflight) as b:
        b.uint8_io = True  # what CUDA sets; on the CPU the float path is the default
        restorer = FrameRestorer(b)
        assert restorer.uint8 and restorer.depth == b.inflight
        pending = [restorer.submit(Frame(im, 0.0, k)) for k, im in enumerate(images[:2])]
        via_uint8 = [restorer.finish(pending[0]).image]
        pending.append(restorer.submit(Frame(images[2], 0.0, 2)))  # reuses frame 0's buffers
        via_uint8 += [restorer.finish(h).image for h in pending[1:]]
        assert_uint8_path_matches_float(b, via_uint8, images)


def test_torch_uint8_path_matches_float_path(fast_weights: Path) -> None:
    """The uint8 path torch takes on CUDA (conversion on the device, frames in flight), run here
    on the CPU: the same frames as the float path to ±1, in order, buffers reused safely."""
    _torch_uint8_vs_float("cpu", fast_weights)


def test_torch_uint8_path_on_cuda(fast_weights: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: the pinned-memory uploads and events run only there")
    with open_backend(str(fast_weights), "torch", "cuda") as b:
        assert b.uint8_io and b.inflight == 1  # open_backend's default
    _torch_uint8_vs_float("cuda", fast_weights)


def test_gpu_frames_hand_engines_contiguous_nchw() -> None:
    """TensorRT reads its input through a raw pointer: the converted batch must be plain NCHW."""
    import torch

    from streamer.backends.gpu_frames import GpuFrames

    seen = []
    frames = GpuFrames(lambda x: seen.append(x) or x, torch.device("cpu"))
    image = np.random.default_rng(1).integers(0, 256, (1, 5, 7, 3), np.uint8)
    out = frames.finish(frames.start(image))
    assert seen[0].is_contiguous() and seen[0].shape == (1, 3, 5, 7)
    assert np.array_equal(out, image)  # identity network: the round trip is exact


def test_torch_on_cpu_keeps_the_float_path(fast_weights: Path) -> None:
    from streamer.preprocess.frames import FrameRestorer

    with open_backend(str(fast_weights), "torch", "cpu", inflight=2) as b:
        assert not b.uint8_io and b.inflight == 1
        assert not FrameRestorer(b).uint8


def test_int8_option_builds_once_and_caches(tmp_path: Path, fast_weights: Path, monkeypatch) -> None:
    """`backend.int8`: quantized with the calibration frames on first use, reused after."""
    from streamer.backends import int8_cache
    from streamer.export.calibration import make_calib

    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2
    rng = np.random.default_rng(4)
    for i in range(3):
        cv2.imwrite(str(frames / f"f{i}.png"), rng.integers(0, 256, (96, 160, 3), np.uint8))
    calib = tmp_path / "calib"
    make_calib([frames], calib, frames=3, size_wh=(160, 96), dirty_share=0.0)
    first = int8_cache.int8_onnx(str(fast_weights), "fast", calib)
    assert first.exists() and first.parent == tmp_path / "cache" / "int8"
    stamp = first.stat().st_mtime_ns
    assert int8_cache.int8_onnx(str(fast_weights), "fast", calib) == first
    assert first.stat().st_mtime_ns == stamp  # not rebuilt
    monkeypatch.setattr(int8_cache, "_code_sha", lambda: "another streamer version")
    assert int8_cache.int8_onnx(str(fast_weights), "fast", calib) != first  # new code: rebuilt
    with open_backend(str(fast_weights), "onnxruntime", arch="fast", int8=True, calib=calib) as b:
        x = rng.random((1, 3, 32, 48), dtype=np.float32)
        assert b(x).shape == x.shape
    with pytest.raises(ConfigError, match="int8 is for the CPU backends"):
        open_backend(str(fast_weights), "torch", arch="fast", int8=True, calib=calib)
    with pytest.raises(ConfigError, match="calibration frames not found"):
        int8_cache.int8_onnx(str(fast_weights), "fast", tmp_path / "nope")
    every = int8_cache.int8_onnx(str(fast_weights), "fast", calib, all_layers=True)  # int8: all
    assert every.name.startswith("fast-all-") and every != int8_cache.int8_onnx(str(fast_weights), "fast", calib)
    with pytest.raises(ConfigError, match="int8 'some': use true, false or all"):
        open_backend(str(fast_weights), "onnxruntime", arch="fast", int8="some", calib=calib)


_SIGNAL_AFTER_TWO_BACKENDS = """
import gc, signal, subprocess, sys
import numpy as np
from streamer.backends import open_backend
signal.signal(signal.SIGCHLD, lambda *a: None)  # Python handlers run on the alternate signal stack
first, second = open_backend("fast", "openvino"), open_backend("fast", "openvino")
for b in (first, second):
    b(np.zeros((1, 3, 32, 32), np.float32))
first.close(); del first, b; gc.collect()  # released in the order they were opened
second.close(); del second; gc.collect()
subprocess.run([sys.executable, "-c", "pass"], check=True)  # SIGCHLD: the handler runs
print("alive")
"""


@pytest.mark.skipif(not importlib.util.find_spec("openvino"), reason="openvino not installed")
def test_signals_after_two_openvino_backends_do_not_crash():
    """Each ov.Core's CPU plugin swaps the main thread's signal stack and restores the one it
    found; two Cores released first-in-first-out left it on freed memory, and the next signal
    handler (Ctrl-C, SIGTERM, a child exiting) killed the process with SIGSEGV. One shared Core."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_TWO_BACKENDS], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "alive", (done.returncode, done.stderr[-500:])


@pytest.mark.parametrize("device, backend, want", [
    (None, "torch", "cpu"), (None, "tensorrt", "cuda"), (None, "openvino", "cpu"), ("CUDA:1", "torch", "cuda:1"),
    ("gpu", "torch", "device 'gpu': use cpu, cuda or cuda:N"),
    ("cpu", "tensorrt", "device cpu: the tensorrt backend runs on a GPU"),
    ("cuda", "openvino", "device cuda: the openvino backend runs on the CPU"),
])
def test_device_is_checked_against_the_backend_before_loading(device, backend, want) -> None:
    """A Jetson user's `Cleaner("x.engine", backend="tensorrt")` needs no device=; a GPU asked of
    a CPU runtime, or a misspelt device, is one line before any weights load."""
    from streamer.backends import resolve_device

    if want.startswith("device"):
        with pytest.raises(ConfigError, match=want):
            resolve_device(device, backend)
    else:
        assert resolve_device(device, backend) == want


def test_onnxruntime_run_errors_are_one_engine_error_line(fast_weights: Path) -> None:
    with open_backend(str(fast_weights), "onnxruntime", threads=1) as b:
        with pytest.raises(EngineError, match=r"^\S+ \(exported in memory\): onnxruntime cannot run a "
                                              r"1x4x16x16 batch \(Got invalid dimensions .* index: 1 Got: 4 "
                                              r"Expected: 3[^\n]*$"):
            b(np.zeros((1, 4, 16, 16), np.float32))


def test_openvino_is_imported_without_its_usage_telemetry(tmp_path: Path, fast_weights: Path) -> None:
    """``import openvino`` sends an analytics event and writes ~/intel/; the backend imports it
    with that off (OpenVINO's own no-op stub), and leaves the telemetry package importable."""
    skip_without_openvino()
    if importlib.util.find_spec("openvino_telemetry") is None:
        pytest.skip("openvino-telemetry is not installed: nothing to switch off")
    code = f"""
import sys, threading
from streamer.backends import open_backend
with open_backend({str(fast_weights)!r}, "openvino", "cpu", threads=1) as b:
    pass
from openvino.tools.ovc import telemetry_utils
assert telemetry_utils.tm.__name__.endswith("telemetry_stub"), telemetry_utils.tm.__name__
import openvino_telemetry  # importable again for whoever wants it
print("threads", sorted(t.name for t in threading.enumerate() if not t.daemon))
"""
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("STREAMER_OPENVINO_TELEMETRY", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "threads ['MainThread']" in out.stdout
    assert not (tmp_path / "intel").exists()
