"""ONNX Runtime INT8 on CPU: builds from calibration frames, runs, and reports what it costs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from streamer.export import ExportRequest, export
from streamer.export.calibration import make_calib, read_calib
from streamer.models import get_spec


@pytest.fixture(scope="module")
def weights(fast_weights: Path) -> Path:
    return fast_weights  # conftest's random-init FastNet: plumbing, not quality


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small photo-like frames (three clean + three synthetic-dirty twins)."""
    import cv2

    src = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k in range(4):
        yy, xx = np.mgrid[0:96, 0:160].astype(np.float32)
        img = 0.5 + 0.4 * np.sin(xx / (5 + 7 * k)) * np.cos(yy / (9 + 3 * k))
        img = np.clip(img[..., None] * rng.uniform(0.4, 1.0, 3) + rng.normal(0, 0.03, (96, 160, 3)), 0, 1)
        cv2.imwrite(str(src / f"photo{k}.png"), (img * 255).astype(np.uint8))
    out = tmp_path_factory.mktemp("calib")
    make_calib([src], out, frames=6, size_wh=(160, 96), dirty_share=0.5)
    return out


def test_int8_builds_runs_and_reports(weights: Path, calib: Path, tmp_path: Path) -> None:
    from streamer.backends.ort_backend import OrtBackend

    out = tmp_path / "fast-int8.onnx"
    res = export(ExportRequest(model="fast", format="onnx", precision="int8", output=out,
                               weights=weights, calib=calib))
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    out_node = next(n for n in model.graph.node if "output" in n.output)
    # the output tail (blend, clip, depth-to-space) stays fp32: no Q/DQ after the head
    assert out_node.op_type not in {"QuantizeLinear", "DequantizeLinear"}
    names = [n.name for n in model.graph.node]
    clip = next(i for i, n in enumerate(model.graph.node) if n.op_type == "Clip")
    assert not any(n.op_type in {"QuantizeLinear", "DequantizeLinear"}
                   for n in model.graph.node[clip:]), names[clip:]
    report = res.sidecar.parity["ort_int8"]
    assert report["frames"] == 3 and report["corruption"] == "dirt"
    assert report["psnr_vs_fp32_db"] > 40
    assert abs(report["cost_db"]) < 0.5
    assert report["gain_fp32_db"] == pytest.approx(report["gain_int8_db"] + report["cost_db"])
    assert res.sidecar.calibration["data_sha256"] == read_calib(calib).sha256
    backend = OrtBackend(out, threads=1)
    x = np.random.default_rng(1).random((1, 3, 64, 96), dtype=np.float32)
    y = backend(x)
    assert y.shape == x.shape and y.dtype == np.float32 and 0.0 <= y.min() and y.max() <= 1.0


def test_fixed_size_int8_fits_calibration_frames_to_the_size(weights: Path, calib: Path, tmp_path: Path) -> None:
    """--size makes a fixed-shape model; 160×96 calibration frames must be fitted to it, not fed raw."""
    from streamer.backends.ort_backend import OrtBackend

    out = tmp_path / "fast-int8-fixed.onnx"
    res = export(ExportRequest(model="fast", format="onnx", precision="int8", output=out,
                               weights=weights, calib=calib, size=(64, 128)))
    assert res.sidecar.shapes == {"fixed": [1, 64, 128]}
    assert res.sidecar.calibration["data_sha256"] == read_calib(calib, size_hw=(64, 128)).sha256
    assert res.sidecar.parity["ort_int8"]["psnr_vs_fp32_db"] > 40
    y = OrtBackend(out, threads=1)(np.full((1, 3, 64, 128), 0.5, np.float32))
    assert y.shape == (1, 3, 64, 128)


def test_calibration_hash_is_stable(calib: Path) -> None:
    a, b = read_calib(calib, multiple=8), read_calib(calib, multiple=8)
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    assert read_calib(calib, max_frames=3).sha256 != a.sha256


def test_minmax_calibration_builds(weights: Path, calib: Path, tmp_path: Path) -> None:
    from streamer.evaluate.metrics import psnr_db
    from streamer.export.onnx_export import export_onnx, onnx_outputs, probe_inputs
    from streamer.export.ort_int8 import Int8Options, quantize_int8
    from streamer.models.weights import load_weights

    net = load_weights(get_spec("fast").build(), weights)
    fp32 = export_onnx(net, tmp_path / "fp32.onnx", shape=(1, 32, 32), dynamic=True)
    q = quantize_int8(fp32, tmp_path / "q.onnx", read_calib(calib, max_frames=2), Int8Options(method="minmax"))
    x = probe_inputs([(1, 48, 64)])
    assert psnr_db(onnx_outputs(q, x)[0], onnx_outputs(fp32, x)[0]) > 30


def test_calibration_holds_one_frame_at_a_time(weights: Path, calib: Path, tmp_path: Path, monkeypatch) -> None:
    """ONNX Runtime's histogram calibrators keep every activation of every frame they are given in
    one pass (drn on the shipped 35 frames ran a 24 GB machine out of memory): one frame a pass."""
    from onnxruntime.quantization import calibrate

    from streamer.export.onnx_export import export_onnx
    from streamer.export.ort_int8 import quantize_int8
    from streamer.models.weights import load_weights

    passes: list[int] = []
    collect = calibrate.HistogramCalibrater.collect_data

    def counting(self, reader):
        frames, get = [], reader.get_next
        reader.get_next = lambda: frames.append(1) or get()  # one call past the last frame
        try:
            return collect(self, reader)
        finally:
            reader.get_next = get
            passes.append(len(frames) - 1)

    monkeypatch.setattr(calibrate.HistogramCalibrater, "collect_data", counting)
    net = load_weights(get_spec("fast").build(), weights)
    fp32 = export_onnx(net, tmp_path / "fp32.onnx", shape=(1, 32, 32), dynamic=True)
    quantize_int8(fp32, tmp_path / "q.onnx", read_calib(calib, max_frames=3))  # percentile: a histogram
    assert passes == [1, 1, 1]


def test_entropy_is_refused_with_the_reason(weights: Path, calib: Path, tmp_path: Path) -> None:
    """ORT's quantize_static gives entropy 128 bins for 128 levels: its ranges equal min/max exactly."""
    from streamer.errors import ExportError

    with pytest.raises(ExportError, match="entropy.*reproduces minmax"):
        export(ExportRequest(model="fast", format="onnx", precision="int8", output=tmp_path / "e.onnx",
                             weights=weights, calib=calib, calib_method="entropy"))
    assert not (tmp_path / "e.onnx").exists()


def test_fast_drops_int8_keeps_the_fill_finder_and_heads_fp32(calib: Path, tmp_path: Path) -> None:
    """The drop fill divides by a blurred validity, and quantizing the finder and the gain/offset
    heads cost 0.54 dB of drop gain (session 14): those convs keep float weights
    (``ModelSpec.int8_fp32``), the trunk's go INT8."""
    out = tmp_path / "fast-drops-int8.onnx"
    res = export(ExportRequest(model="fast-drops", format="onnx", precision="int8", output=out, calib=calib))
    model = onnx.load(str(out))
    fill = [n for n in model.graph.node if n.name.startswith("/blend/fill/")]
    assert fill and any(n.op_type == "Div" for n in fill)
    assert not any(n.op_type in {"QuantizeLinear", "DequantizeLinear"} for n in fill)
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    convs = {n.name: n.input[1] in floats for n in model.graph.node if n.op_type == "Conv"}
    kept = {name for name, fp32 in convs.items() if fp32}
    assert {n for n in convs if n.startswith(("/drops/", "/blend/"))} <= kept
    assert {"/enc1/enc1.0/Conv", "/dec1/dec1.0/Conv"}.isdisjoint(kept)  # the full-size trunk is INT8
    assert res.sidecar.options["int8"]["fp32_prefixes"][:2] == ["/drops/", "/blend/"]
    assert abs(res.sidecar.parity["ort_int8"]["cost_db"]) < 1.0


def test_fast_int8_keeps_the_stem_and_the_deepest_convs_fp32(calib: Path, tmp_path: Path) -> None:
    """The stem's raw-pixel conv and the 1/16 stage's mid and up3 convs (whose activations dirt
    over a sky-filled frame drives past calib/'s ranges, session 21) keep float weights; the
    rest of the trunk, where the FLOPs are, goes INT8."""
    out = tmp_path / "fast-int8.onnx"
    export(ExportRequest(model="fast", format="onnx", precision="int8", output=out, calib=calib))
    model = onnx.load(str(out))
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    kept = {n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] in floats}
    assert kept == {"/stem/stem.0/Conv", "/mid/mid.0/mid.0.0/Conv", "/mid/mid.1/mid.1.0/Conv",
                    "/up3/conv/Conv"}


def test_int8_parts_name_subtrees_or_single_nodes() -> None:
    """"/mid/" takes the module's nodes; "/Add" is one node, not "/Add_1" too."""
    from streamer.export.ort_int8 import keeps_fp32

    assert keeps_fp32("/mid/mid.0/mid.0.0/Conv", ("/mid/",))
    assert not keeps_fp32("/middle/Conv", ("/mid/",))
    assert keeps_fp32("/Add", ("/Add",)) and not keeps_fp32("/Add_1", ("/Add",))


def test_int8_all_quantizes_what_the_model_keeps_fp32(calib: Path, tmp_path: Path) -> None:
    """`--int8-all`: speed over quality for fast-drops (its finder and heads go INT8 as well); the
    sidecar says nothing was kept fp32, and the flag means nothing outside int8."""
    from streamer.errors import ExportError

    out = tmp_path / "fast-drops-int8-all.onnx"
    res = export(ExportRequest(model="fast-drops", format="onnx", precision="int8", output=out, calib=calib,
                               int8_all=True))
    model = onnx.load(str(out))
    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    drops = [n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith(("/drops/", "/blend/"))
             and not n.name.startswith("/blend/fill/")]  # the fill's fixed blurs stay float either way
    assert len(drops) > 10 and not any(n.input[1] in floats for n in drops)  # their weights are INT8
    assert res.sidecar.options["int8"]["fp32_prefixes"] == []
    with pytest.raises(ExportError, match="--int8-all: only int8 .* not fp32"):
        export(ExportRequest(model="fast-drops", format="onnx", precision="fp32", output=tmp_path / "x.onnx",
                             int8_all=True))
