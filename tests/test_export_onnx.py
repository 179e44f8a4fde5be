"""PyTorch -> ONNX: checker passes, parity vs PyTorch is measured and enforced, H/W stay dynamic."""

from __future__ import annotations

from pathlib import Path

import onnx
import numpy as np
import pytest
import torch

from streamer.errors import ExportError
from streamer.export import ExportRequest, export
from streamer.evaluate.metrics import psnr_db
from streamer.export.sidecar import read_sidecar
from streamer.export.onnx_export import (
    check_parity,
    export_onnx,
    onnx_outputs,
    probe_inputs,
    read_metadata,
    torch_outputs,
)
from streamer.models import get_spec, list_specs
from streamer.models.weights import save_weights, sha256_file


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-init FastNet: parity does not depend on training."""
    torch.manual_seed(0)
    return save_weights(get_spec("fast").build(), tmp_path_factory.mktemp("w") / "fast.safetensors")


def test_fixed_size(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "engines" / "fast-64x96.onnx"
    res = export(ExportRequest(model="fast", format="onnx", precision="fp32", output=out,
                               weights=weights, size=(64, 96)))
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 96]
    meta = read_metadata(out)
    assert meta["model"] == "fast" and meta["weights_sha256"] == sha256_file(weights) and meta["multiple"] == "16"
    parity = res.sidecar.parity["onnx_fp32_vs_torch"]
    assert parity["psnr_db"] >= 50 and parity["max_abs"] < 1e-3
    assert res.sidecar_path == out.with_name("fast-64x96.onnx.json") and res.sidecar_path.exists()
    assert res.sidecar.model_sha256 == sha256_file(out)
    assert res.sidecar.onnxruntime_version  # the parity above ran on it
    assert read_sidecar(out).multiple == 16  # what a TensorRT engine built from it pads frames to
    from streamer.backends import open_backend
    from streamer.errors import EngineError

    backend = open_backend(str(out), "onnxruntime", threads=1)
    assert backend(np.zeros((1, 3, 64, 96), np.float32)).shape == (1, 3, 64, 96)
    with pytest.raises(EngineError, match=r"built for 96x64 input, got 64x64; set preprocess.resize: 96x64 "
                                          r"\(bench: --size 96x64; or export without --size"):
        backend(np.zeros((1, 3, 64, 64), np.float32))


def test_dynamic_runs_at_two_sizes(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "fast.onnx"
    res = export(ExportRequest(model="fast", format="onnx", precision="fp32", output=out, weights=weights))
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert res.sidecar.shapes == {"dynamic": ["batch", "height", "width"]}
    net = get_spec("fast").build()
    from streamer.models.weights import load_weights

    load_weights(net, weights)
    inputs = probe_inputs([(1, 48, 112), (2, 80, 64)], seed=5)
    for got, want in zip(onnx_outputs(out, inputs), torch_outputs(net, inputs)):
        assert got.shape == want.shape and psnr_db(got, want) >= 50


def test_parity_failure_is_an_error(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "fast.onnx"
    export(ExportRequest(model="fast", format="onnx", precision="fp32", output=out, weights=weights))
    other = get_spec("fast").build()
    with torch.no_grad():
        other.head.weight.add_(0.5)  # a different network: the ONNX no longer matches it
    with pytest.raises(ExportError, match=r"ONNX output differs from PyTorch \(PSNR .* < 50 dB"):
        check_parity(out, other, [(1, 32, 32)])


def test_cli_export_writes_file_and_sidecar(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from streamer.cli import main

    out = tmp_path / "fast.onnx"
    assert main(["export", "--model", "fast", "--weights", str(weights), "--format", "onnx",
                 "--precision", "fp32", "--size", "64x32", "-o", str(out)]) == 0
    assert "onnx_fp32_vs_torch: PSNR" in capsys.readouterr().out
    assert out.exists() and out.with_name("fast.onnx.json").exists()
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 32, 64]  # --size is WIDTHxHEIGHT, as in bench
    assert main(["export", "--weights", str(weights), "--precision", "fp16", "-o", str(out)]) == 1
    assert "--precision fp16: not offered" in capsys.readouterr().err


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_every_model_exports_with_parity(spec, tmp_path: Path) -> None:
    """Random-init weights: export + checker + ≥ 50 dB vs PyTorch at two sizes (dynamic H/W)."""
    m = max(spec.multiple, 1)
    h, w = max(m, 48 // m * m), max(m, 80 // m * m)
    torch.manual_seed(0)
    net = spec.build().eval()
    path = export_onnx(net, tmp_path / f"{spec.name}.onnx", shape=(1, h, w), dynamic=True)
    parity = check_parity(path, net, [(1, h, w), (1, h + 2 * m, w + m)])
    assert parity.psnr_db >= 50


def test_frame_wide_context_options_export_with_parity(tmp_path: Path) -> None:
    """``glob`` / ``glob_max`` (E31, E34) become GlobalAveragePool / GlobalMaxPool: with
    non-zero context weights the ONNX graph still matches PyTorch at two frame sizes (the pools
    are over whatever frame comes, not one fixed size)."""
    from streamer.models.fast import FastNet

    torch.manual_seed(0)
    net = FastNet(glob=True, glob_max=True).eval()
    with torch.no_grad():
        net.head.weight.normal_(std=0.05)
        net.glob.weight.normal_(std=0.2)
        net.glob_max.weight.normal_(std=0.2)
    path = export_onnx(net, tmp_path / "ctx.onnx", shape=(1, 64, 96), dynamic=True)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"GlobalAveragePool", "GlobalMaxPool"} <= ops, ops
    assert check_parity(path, net, [(1, 64, 96), (1, 96, 160)]).psnr_db >= 50
