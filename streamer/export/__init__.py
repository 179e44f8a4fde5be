"""Export a registered model: ``export(ExportRequest(...)) -> ExportResult``.

Steps: validate against the format table -> load weights -> fp32 ONNX (+ parity vs PyTorch) ->
the requested artifact (ONNX Runtime INT8, TensorRT engine, Torch-TensorRT program) -> a JSON
sidecar next to it. Heavy modules are imported inside the functions: the TensorRT backend reads
:mod:`streamer.export.sidecar` on the live path and must not pay for the rest.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from streamer.export.formats import (
    DEFAULT_PROFILE,
    Environment,
    ExportRequest,
    export_formats,
    validate_request,
)
from streamer.export.sidecar import Sidecar, sidecar_path, write_sidecar
from streamer.errors import ExportError, check_output

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (phase, step, steps); the CLI draws it
PARITY_SHAPES = [(1, 80, 128), (1, 128, 192)]  # small, non-square, two sizes: proves dynamic H/W
REPORT_FRAMES = 16  # clean calibration frames the INT8 report corrupts and restores (4 read
# 0.44 dB where 16 read 0.64 and the 18 validation crops 0.13: session 20; 16 cost ~1 s)


@dataclass(frozen=True)
class ExportResult:
    """The file written, its sidecar, and the sidecar's content."""

    path: Path
    sidecar_path: Path
    sidecar: Sidecar


def _noop(phase: str, step: int, steps: int) -> None:
    pass


def export(req: ExportRequest, *, env: Environment | None = None,
           progress: Progress | None = None) -> ExportResult:
    """Validate, build and check one export; raises ExportError/WeightsError with one-line messages."""
    from streamer.errors import WeightsError
    from streamer.models import get_spec
    from streamer.models.weights import build_with_weights, sha256_file

    progress = progress or _noop
    spec = get_spec(req.model)
    fmt = validate_request(req, env=env, multiple=spec.multiple)
    weights = req.weights or spec.weights_path
    if weights is None:
        raise WeightsError(f"model {spec.name} ships no weights; pass --weights FILE.safetensors")
    check_output(req.output, "-o", example="fast.onnx", error=ExportError)  # before minutes of work
    net = build_with_weights(spec, weights).eval()
    weights_sha = sha256_file(weights)
    meta = {"model": spec.name, "weights_sha256": weights_sha, "multiple": str(spec.multiple),
            "layout": "NCHW float32 RGB [0,1]", "producer": "streamer export"}
    side = Sidecar(model=spec.name, format=fmt.name, precision=req.precision, file=req.output.name,
                   weights_sha256=weights_sha, multiple=spec.multiple, options=dict(req.options))
    calib = None
    if req.calib is not None:
        from streamer.export.calibration import read_calib

        progress("read calibration frames", 0, 1)
        # a fixed --size model only accepts that size: fit the frames to it (TensorRT fits to opt anyway)
        calib = read_calib(req.calib, max_frames=req.calib_frames, size_hw=req.size, multiple=spec.multiple)
        side.calibration = {"source": str(req.calib), "frames": len(calib.frames),
                            "data_sha256": calib.sha256, "method": req.calib_method}
        progress("read calibration frames", 1, 1)
    try:
        with tempfile.TemporaryDirectory(prefix="streamer-export-") as tmp:
            onnx_path = req.output if fmt.name == "onnx" and req.precision == "fp32" else Path(tmp) / "fp32.onnx"
            _onnx_fp32(net, onnx_path, req, meta, side, progress)
            fp32_prefixes = () if req.int8_all else spec.int8_fp32  # what INT8 leaves in float
            if fmt.name == "onnx" and req.precision == "int8":
                _ort_int8(onnx_path, req, calib, side, fp32_prefixes, progress)
            elif fmt.name == "engine":
                _engine(onnx_path, req, calib, side, net, Path(tmp), fp32_prefixes, progress)
            elif fmt.name == "torchtrt":
                _torchtrt(net, req, calib, side, spec.multiple, progress)
        side.model_sha256 = sha256_file(req.output)
        return ExportResult(req.output, write_sidecar(req.output, side), side)
    except OSError as exc:  # a full disk, a folder that takes no files (/proc, a read-only mount)
        where = f" {exc.filename}" if exc.filename else ""
        raise ExportError(f"-o {req.output}: cannot write{where} ({exc.strerror or exc})") from None


def _onnx_fp32(net, path: Path, req: ExportRequest, meta: dict, side: Sidecar, progress: Progress) -> None:
    import onnxruntime

    from streamer.export.onnx_export import check_parity, export_onnx

    progress("export onnx", 0, 2)
    if req.size is not None:
        shape = (1, *req.size)
        export_onnx(net, path, shape=shape, dynamic=False, opset=req.opset, metadata=meta)
        side.shapes = {"fixed": list(shape)}
        probes = [shape]
    else:
        export_onnx(net, path, shape=PARITY_SHAPES[0], dynamic=True, opset=req.opset, metadata=meta)
        side.shapes = {"dynamic": ["batch", "height", "width"]}
        probes = PARITY_SHAPES
    progress("export onnx", 1, 2)
    side.parity["onnx_fp32_vs_torch"] = check_parity(path, net, probes).as_dict()
    side.onnxruntime_version = onnxruntime.__version__  # the parity check ran on it (and INT8 on it too)
    side.options["opset"] = req.opset
    progress("export onnx", 2, 2)


def _ort_int8(fp32: Path, req: ExportRequest, calib, side: Sidecar, fp32_prefixes: tuple[str, ...],
              progress: Progress) -> None:
    from streamer.export.ort_int8 import Int8Options, int8_report, quantize_int8

    opts = Int8Options(method=req.calib_method, target="ort", fp32_prefixes=fp32_prefixes)
    progress("calibrate int8", 0, 1)
    quantize_int8(fp32, req.output, calib, opts)
    progress("calibrate int8", 1, 1)
    progress("int8 report", 0, 1)
    report = int8_report(fp32, req.output, calib.clean(REPORT_FRAMES))
    side.parity["ort_int8"] = report.as_dict()
    side.options["int8"] = {"format": "QDQ", "activations": "uint8 asymmetric",
                            "weights": "int8 symmetric per-channel", "fp32_tail": opts.fp32_tail,
                            "fp32_prefixes": list(opts.fp32_prefixes)}
    progress("int8 report", 1, 1)


def _profile(req: ExportRequest):
    if req.size is not None:
        fixed = (1, *req.size)
        return fixed, fixed, fixed
    return req.dynamic or DEFAULT_PROFILE


def _engine(fp32: Path, req: ExportRequest, calib, side: Sidecar, net, tmp: Path,
            fp32_prefixes: tuple[str, ...], progress: Progress) -> None:
    from streamer.export.sidecar import current_gpu
    from streamer.export.tensorrt_build import build_engine, import_tensorrt, trt_major

    trt = import_tensorrt()
    profile = _profile(req)
    qdq = None
    if req.precision == "int8" and trt_major(trt) >= 10:
        from streamer.export.ort_int8 import Int8Options, quantize_int8

        progress("calibrate int8 (QDQ)", 0, 1)
        qdq = quantize_int8(fp32, tmp / "qdq.onnx", calib, Int8Options(
            method=req.calib_method, target="tensorrt", fp32_prefixes=fp32_prefixes))
        progress("calibrate int8 (QDQ)", 1, 1)
    from streamer.models.weights import sha256_file

    built = build_engine(fp32, req.output, precision=req.precision, profile=profile,
                         workspace_gib=req.workspace_gib or 2.0, device=req.device or 0, calib=calib,
                         model_sha256=sha256_file(fp32), qdq_onnx=qdq, progress=progress)
    side.tensorrt_version = built.tensorrt_version
    side.gpu = current_gpu(req.device or 0)
    side.shapes = {"profile": built.profile}
    side.options |= {"workspace_gib": req.workspace_gib or 2.0, "flags": built.flags,
                     "int8_mode": built.int8_mode}
    if side.calibration is not None:
        side.calibration["cache"] = built.calib_cache
    side.parity["engine_vs_torch"] = _backend_parity(req, net, profile, side)


def _backend_parity(req: ExportRequest, net, profile, side: Sidecar) -> dict:
    """Run the built file through the tensorrt backend at the profile's min, opt and max: a file
    that only takes its opt shape (a program exported at a fixed size) must not pass. Each
    corner once; the PyTorch reference runs on the CPU (fp32, no TF32). Out of GPU memory at a
    corner says nothing about the file: it is kept, that corner and the larger ones unchecked."""
    from streamer.backends.trt_backend import open_trt_backend
    from streamer.errors import EngineError, ExportError
    from streamer.export.onnx_export import (
        FP32_MIN_PSNR_DB,
        compare,
        probe_inputs,
        torch_outputs,
    )

    write_sidecar(req.output, side)  # the backend checks the sidecar before loading
    shapes = list(dict.fromkeys(tuple(s) for s in profile))  # a fixed --size is one shape
    inputs = probe_inputs(shapes)
    got, failed = [], None
    with open_trt_backend(str(req.output), device=f"cuda:{req.device or 0}", arch=req.model) as backend:
        for shape, x in zip(shapes, inputs):
            try:
                got.append(backend(x))
            except (EngineError, RuntimeError, AssertionError) as exc:  # torch's shape guards assert
                failed = (shape, exc)
                break
    unchecked = None
    if failed is not None and _out_of_memory(failed[1]):
        (n, h, w), exc = failed
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        if not got:
            raise ExportError(f"{req.output}: could not check the built file on a {n}x3x{h}x{w} batch for "
                              f"lack of GPU memory ({why}); kept, unchecked; free GPU memory (other "
                              "processes on it) and export again") from exc
        log.warning("%s: the parity check could not run on a %dx3x%dx%d batch for lack of GPU memory (%s); "
                    "the file is kept, checked at the smaller shapes only", req.output, n, h, w, why)
        unchecked = {"shape": [n, 3, h, w], "reason": f"out of GPU memory: {why}"}
        inputs, failed = inputs[:len(got)], None
    if failed is not None:
        (n, h, w), exc = failed
        _discard(req.output)
        raise ExportError(f"{req.output}: the built file fails on a {n}x3x{h}x{w} batch, inside its own "
                          f"profile ({(str(exc).splitlines() or [type(exc).__name__])[0]}); not kept, "
                          "report it with the TensorRT version") from exc
    parity = compare(got, torch_outputs(net, inputs))
    if req.precision == "fp32" and parity.psnr_db < FP32_MIN_PSNR_DB:
        _discard(req.output)  # a wrong fp32 engine must not stay around to be used
        raise ExportError(f"{req.output}: fp32 engine differs from PyTorch (PSNR {parity.psnr_db:.1f} dB "
                          f"< {FP32_MIN_PSNR_DB:.0f} dB, max abs {parity.max_abs:.2g}); not kept, "
                          "report it with the TensorRT version")
    return parity.as_dict() | ({"not_checked": unchecked} if unchecked else {})


def _out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or TensorRT/the backend saying so (a None execution context)."""
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)


def _torchtrt(net, req: ExportRequest, calib, side: Sidecar, multiple: int, progress: Progress) -> None:
    from streamer.export.sidecar import current_gpu
    from streamer.export.torchtrt import compile_torchtrt

    profile = _profile(req)
    progress("torch-tensorrt compile", 0, 1)
    res = compile_torchtrt(net, req.output, precision=req.precision, profile=profile, multiple=multiple,
                           workspace_gib=req.workspace_gib or 2.0, device=req.device or 0, calib=calib)
    progress("torch-tensorrt compile", 1, 1)
    side.tensorrt_version = res.tensorrt_version
    side.torch_tensorrt_version = res.torch_tensorrt_version
    side.gpu = current_gpu(req.device or 0)
    side.shapes = {"profile": res.profile}
    side.parity["torchtrt_vs_torch"] = _backend_parity(req, net, profile, side)


__all__ = ["Environment", "ExportRequest", "ExportResult", "export", "export_formats", "sidecar_path",
           "validate_request"]
