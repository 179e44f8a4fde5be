"""The format table refuses contradictions with one line that says what to type instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.errors import ExportError
from streamer.export.formats import (
    FORMATS,
    Environment,
    ExportRequest,
    get_format,
    parse_dynamic,
    parse_hw,
    validate_request,
)

NO_GPU = Environment(cuda_devices=0, tensorrt_version=None, torch_tensorrt=False)
GPU_NO_TRT = Environment(cuda_devices=1, tensorrt_version=None, torch_tensorrt=False)
TRT_NO_GPU = Environment(cuda_devices=0, tensorrt_version="10.3.0", torch_tensorrt=True)
JETSON = Environment(cuda_devices=1, tensorrt_version="10.3.0", torch_tensorrt=True)


def req(fmt: str = "onnx", precision: str = "fp32", out: str | None = None, **kw) -> ExportRequest:
    suffix = {"onnx": ".onnx", "engine": ".engine", "torchtrt": ".ep"}.get(fmt, ".onnx")
    return ExportRequest(model="fast", format=fmt, precision=precision,
                         output=Path(out or f"engines/fast{suffix}"), **kw)


@pytest.fixture
def calib_dir(tmp_path: Path) -> Path:
    (tmp_path / "calib").mkdir()
    return tmp_path / "calib"


REFUSED = [
    ("onnx fp16", lambda c: req("onnx", "fp16"), NO_GPU, r"fp16: not offered.*--format engine --precision fp16"),
    ("onnx int8 no calib", lambda c: req("onnx", "int8"), NO_GPU, r"needs calibration frames; add --calib calib/"),
    ("torchtrt int8 no calib", lambda c: req("torchtrt", "int8"), JETSON, r"torchtrt --precision int8: needs calibration"),
    ("engine int8 no calib", lambda c: req("engine", "int8"), JETSON, r"needs calibration frames"),
    ("calib on fp32", lambda c: req("onnx", "fp32", calib=c), NO_GPU, r"only int8 is calibrated"),
    ("missing calib", lambda c: req("onnx", "int8", calib=c / "nope"), NO_GPU, r"not found; make one with `streamer calib make"),
    ("engine without tensorrt", lambda c: req("engine", "fp16"), GPU_NO_TRT, r"pip install -e '\.\[tensorrt\]' in the streamer folder \(on Jetson use the JetPack"),
    ("engine without gpu", lambda c: req("engine", "fp16"), TRT_NO_GPU, r"needs an NVIDIA GPU.*use --format onnx"),
    ("torchtrt missing", lambda c: req("torchtrt", "fp16"), GPU_NO_TRT, r"needs torch-tensorrt"),
    ("workspace on onnx", lambda c: req("onnx", workspace_gib=2.0), NO_GPU, r"--workspace: has no meaning for --format onnx; it applies to --format engine / torchtrt"),
    ("device on onnx", lambda c: req("onnx", device=0), NO_GPU, r"--device: has no meaning for --format onnx"),
    ("suffix mismatch", lambda c: req("engine", "fp16", out="engines/fast.onnx"), JETSON, r"suffix \.onnx does not match --format engine; use engines/fast\.engine"),
    ("size and dynamic", lambda c: req("engine", "fp16", size=(64, 64), dynamic=((1, 64, 64),) * 3), JETSON, r"--size and --dynamic exclude each other"),
    ("dynamic on onnx", lambda c: req(dynamic=((1, 64, 64),) * 3), NO_GPU, r"--dynamic: has no meaning for --format onnx; it applies to --format engine / torchtrt"),
    ("size not multiple", lambda c: req(size=(721, 1280)), NO_GPU, r"height 721 is not a multiple of 8 for model fast; use 720 or 728"),
    ("profile not multiple", lambda c: req("engine", "fp16", dynamic=((1, 360, 640), (1, 720, 1282), (1, 1080, 1920))), JETSON, r"--dynamic: width 1282 .* use 1280 or 1288"),
    ("no such gpu", lambda c: req("engine", "fp16", device=3), JETSON, r"--device 3: no such GPU; this machine has 1"),
    ("unknown precision", lambda c: req("onnx", "fp61"), NO_GPU, r"--precision fp61: unknown; did you mean 'fp16'\?"),
    ("typo format", lambda c: req("onxx"), NO_GPU, r"--format onxx: unknown format; did you mean 'onnx'\?"),
    ("alias format", lambda c: req("tensorrt", "fp16"), JETSON, r"--format tensorrt: unknown format; did you mean 'engine'\?"),
    ("old opset", lambda c: req("onnx", opset=13), NO_GPU, r"opset 13: too old"),
    ("opset past torch's newest", lambda c: req("onnx", opset=99), NO_GPU, r"opset 99: this torch exports opsets 17–\d+; use one of those"),
]


@pytest.mark.parametrize("make, env, match", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(make, env: Environment, match: str, calib_dir: Path) -> None:
    with pytest.raises(ExportError, match=match):
        validate_request(make(calib_dir), env=env, multiple=8)


@pytest.mark.parametrize("make, env, fmt", [
    (lambda c: req("onnx"), NO_GPU, "onnx"),
    (lambda c: req("onnx", "int8", calib=c), NO_GPU, "onnx"),
    (lambda c: req("onnx", size=(720, 1280)), NO_GPU, "onnx"),
    (lambda c: req("engine", "fp16", workspace_gib=1.5, device=0), JETSON, "engine"),
    (lambda c: req("engine", "int8", calib=c, dynamic=parse_dynamic("640x360:1280x720:1920x1080")), JETSON, "engine"),
    (lambda c: req("torchtrt", "int8", calib=c), JETSON, "torchtrt"),
], ids=["onnx", "onnx-int8", "onnx-fixed", "engine-fp16", "engine-int8", "torchtrt-int8"])
def test_accepted(make, env: Environment, fmt: str, calib_dir: Path) -> None:
    assert validate_request(make(calib_dir), env=env, multiple=8).name == fmt


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_every_format_is_consistent(fmt) -> None:
    assert get_format(fmt.name) is fmt
    assert fmt.suffix.startswith(".") and "fp32" in fmt.precisions
    assert set(fmt.precisions) <= {"fp32", "fp16", "int8"}
    assert fmt.needs_gpu == (fmt.extra is not None)  # only GPU formats need an extra


def test_parse_shapes() -> None:
    """Every size on the command line is WIDTHxHEIGHT (--dynamic too); tensors are (N, H, W)."""
    assert parse_hw("1280x720") == (720, 1280)
    assert parse_dynamic("2x640x360:4x1280x720:8x1920x1088") == ((2, 360, 640), (4, 720, 1280), (8, 1088, 1920))
    with pytest.raises(ExportError, match="height must satisfy MIN <= OPT <= MAX"):
        parse_dynamic("640x720:640x360:1920x1080")
    with pytest.raises(ExportError, match="expected MIN:OPT:MAX"):
        parse_dynamic("640x360:1280x720")
    with pytest.raises(ExportError, match="expected WIDTHxHEIGHT"):
        parse_hw("1280p")


def test_cli_lists_the_table(capsys: pytest.CaptureFixture) -> None:
    from streamer.cli import main

    assert main(["export", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(f.name in out and f.suffix in out for f in FORMATS)
