"""TensorRT and Torch-TensorRT builds on a real GPU; skipped with a reason elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

trt = pytest.importorskip("tensorrt", reason="TensorRT not installed (the tensorrt extra: pip install -e '.[tensorrt]')")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with CUDA"),
]

from conftest import assert_uint8_path_matches_float  # noqa: E402
from streamer.evaluate.metrics import psnr_db  # noqa: E402
from streamer.backends.trt_backend import open_trt_backend  # noqa: E402
from streamer.export import ExportRequest, export  # noqa: E402
from streamer.export.calibration import make_calib  # noqa: E402
from streamer.export.onnx_export import probe_inputs, torch_outputs  # noqa: E402
from streamer.export.sidecar import check_engine_compatible, current_gpu  # noqa: E402
from streamer.models import get_spec  # noqa: E402
from streamer.models.weights import load_weights  # noqa: E402

PROFILE = ((1, 64, 64), (1, 96, 160), (2, 128, 192))


@pytest.fixture(scope="module")
def weights(fast_weights: Path) -> Path:
    return fast_weights  # conftest's random-init FastNet: plumbing, not quality


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import cv2

    src = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k in range(4):
        cv2.imwrite(str(src / f"p{k}.png"), (rng.random((96, 160, 3)) * 255).astype(np.uint8))
    out = tmp_path_factory.mktemp("calib")
    make_calib([src], out, frames=4, size_wh=(160, 96), dirty_share=0.5)
    return out


@pytest.mark.parametrize("precision, min_psnr", [("fp32", 50.0), ("fp16", 35.0), ("int8", 25.0)])
def test_engine_builds_loads_and_matches(precision: str, min_psnr: float, weights: Path, calib: Path,
                                         tmp_path: Path) -> None:
    out = tmp_path / f"fast-{precision}.engine"
    res = export(ExportRequest(model="fast", format="engine", precision=precision, output=out,
                               weights=weights, dynamic=PROFILE, workspace_gib=1.0,
                               calib=calib if precision == "int8" else None))
    side = check_engine_compatible(out)
    assert side.tensorrt_version == trt.__version__ and side.gpu.capability == current_gpu().capability
    assert res.sidecar.shapes["profile"]["max"] == [2, 3, 128, 192]
    assert res.sidecar.parity["engine_vs_torch"]["shapes"] == [[n, 3, h, w] for n, h, w in PROFILE]
    net = load_weights(get_spec("fast").build(), weights)
    inputs = probe_inputs([(1, 64, 64), (2, 128, 192)])
    with open_trt_backend(str(out), device="cuda:0", arch="fast") as backend:
        got = [backend(x) for x in inputs]
    for g, w in zip(got, torch_outputs(net, inputs)):
        assert g.shape == w.shape and psnr_db(g, w) >= min_psnr


@pytest.mark.parametrize("precision, min_psnr", [("fp32", 50.0), ("fp16", 35.0), ("int8", 25.0)])
def test_torchtrt_saves_and_reloads(precision: str, min_psnr: float, weights: Path, calib: Path,
                                    tmp_path: Path) -> None:
    """At the profile's min, opt and max (dynamic batch, H and W): a program saved at the opt
    shape only passed when this probed (1, 96, 160) alone."""
    pytest.importorskip("torch_tensorrt", reason="torch-tensorrt not installed")
    if precision == "int8":
        pytest.importorskip("modelopt", reason="NVIDIA ModelOpt not installed (pip install nvidia-modelopt)")
    out = tmp_path / f"fast-{precision}.ep"
    res = export(ExportRequest(model="fast", format="torchtrt", precision=precision, output=out,
                               weights=weights, dynamic=PROFILE, calib=calib if precision == "int8" else None))
    corners = [[n, 3, h, w] for n, h, w in PROFILE]
    assert res.sidecar.parity["torchtrt_vs_torch"]["shapes"] == corners  # the export's own check
    net = load_weights(get_spec("fast").build(), weights)
    inputs = probe_inputs(list(PROFILE))
    with open_trt_backend(str(out), device="cuda:0") as backend:
        got = [backend(x) for x in inputs]
        assert backend.multiple == 16  # from the sidecar: the pipeline pads frames for it
    for g, w in zip(got, torch_outputs(net, inputs)):
        assert g.shape == w.shape and psnr_db(g, w) >= min_psnr


def test_engine_takes_uint8_frames_padded_to_its_multiple(weights: Path, tmp_path: Path) -> None:
    """The pipeline hands an engine uint8 frames converted on the GPU (``gpu_frames``), padded to
    the model's multiple (from the sidecar): the same picture as the float path to ±1."""
    from streamer.frame import Frame
    from streamer.preprocess.frames import FrameRestorer

    out = tmp_path / "fast-fp32.engine"
    export(ExportRequest(model="fast", format="engine", precision="fp32", output=out,
                         weights=weights, dynamic=PROFILE, workspace_gib=1.0))
    images = [np.random.default_rng(k).integers(0, 256, (90, 150, 3), np.uint8) for k in range(3)]
    with open_trt_backend(str(out), device="cuda:0", arch="fast", inflight=2) as b:
        assert b.multiple == 16
        restorer = FrameRestorer(b)
        assert restorer.uint8 and restorer.depth == 2
        via_uint8 = [restorer(Frame(im, 0.0, k)).image for k, im in enumerate(images)]
        assert_uint8_path_matches_float(b, via_uint8, images)
