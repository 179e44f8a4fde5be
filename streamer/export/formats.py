"""The one export table, and the check every request passes before any work starts.

Decisions (each refusal names the thing, what is wrong and what to type instead):

* ``onnx`` fp32 — portable, runs anywhere; the input of every TensorRT build.
* ``onnx`` int8 — ONNX Runtime static QDQ model (CPU). Needs ``--calib``.
* ``onnx`` fp16 — refused: ONNX Runtime's CPU provider has no fp16 kernels for most ops (it inserts
  casts and runs slower than fp32), and TensorRT builds its own fp16 from the fp32 ONNX.
* ``engine`` fp32/fp16/int8 — TensorRT, built on the GPU that will run it. int8 needs ``--calib``.
* ``torchtrt`` fp32/fp16/int8 — Torch-TensorRT exported program; int8 goes through NVIDIA ModelOpt
  post-training quantization and needs ``--calib``.
* ``--workspace`` and ``--device`` only mean something to TensorRT builds; ``--size`` and
  ``--dynamic`` exclude each other. Without either, ONNX keeps H and W free and TensorRT builds use
  :data:`DEFAULT_PROFILE`.
* Every calibration is explicit: int8 without ``--calib`` is refused, not silently calibrated on
  something else.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from streamer.config import parse_wxh
from streamer.errors import ExportError, did_you_mean, install_extra

PRECISIONS = ("fp32", "fp16", "int8")
TRT_EXPORT_MISSING = (f"TensorRT export needs the tensorrt extra: {install_extra('tensorrt')} "
                      "(on Jetson use the JetPack python bindings)")
# INT8 range estimators (ONNX Runtime calibration; also the QDQ ranges of TensorRT >= 10 engines).
# Percentile 99.999: a few outlier activations no longer stretch a layer's 256 levels (docs/model-log.md E21).
CALIB_METHODS = ("percentile", "minmax")
DEFAULT_CALIB_METHOD = CALIB_METHODS[0]
Shape = tuple[int, int, int]  # N, H, W (C is always 3)


@dataclass(frozen=True)
class ExportFormat:
    """One row of the table: what a format is and what it accepts."""

    name: str
    suffix: str
    precisions: tuple[str, ...]
    needs_gpu: bool
    extra: str | None  # python module the build imports, None = always installed
    options: tuple[str, ...]  # request fields that mean something for this format
    description: str


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat("onnx", ".onnx", ("fp32", "int8"), False, None, ("size", "calib"),  # any size unless --size
                 "ONNX opset 17 (fp32) or ONNX Runtime static QDQ (int8), CPU or any runtime"),
    ExportFormat("engine", ".engine", PRECISIONS, True, "tensorrt",
                 ("size", "dynamic", "calib", "workspace_gib", "device"),
                 "TensorRT serialized engine, built on the device that runs it"),
    ExportFormat("torchtrt", ".ep", PRECISIONS, True, "torch_tensorrt",
                 ("size", "dynamic", "calib", "workspace_gib", "device"),
                 "Torch-TensorRT exported program (torch_tensorrt.save), reload with torch_tensorrt.load"),
)
EXPORTED_SUFFIXES = tuple(f.suffix for f in FORMATS)  # files that run as exported (.onnx, .engine, .ep)
# names people type for a format, mapped to the table's name
ALIASES = {"tensorrt": "engine", "trt": "engine", "plan": "engine", "torch_tensorrt": "torchtrt",
           "torch-tensorrt": "torchtrt", "ort": "onnx", "onnxruntime": "onnx"}
# TensorRT profile when neither --size nor --dynamic is given: 360p .. 1080p, tuned for 720p
DEFAULT_PROFILE: tuple[Shape, Shape, Shape] = ((1, 352, 640), (1, 720, 1280), (1, 1088, 1920))


def export_formats() -> list[dict]:
    """Rows for `streamer export --list` (like Ultralytics' export_formats())."""
    return [{"format": f.name, "suffix": f.suffix, "precisions": ",".join(f.precisions),
             "gpu": f.needs_gpu, "extra": f.extra or "-", "options": ",".join(f.options),
             "description": f.description} for f in FORMATS]


def get_format(name: str) -> ExportFormat:
    """Look a format up; aliases and typos get the right name in the message."""
    for f in FORMATS:
        if f.name == name:
            return f
    names = [f.name for f in FORMATS]
    hint = did_you_mean(name.lower(), names, 0.5, aliases=ALIASES)
    raise ExportError(f"--format {name}: unknown format{'; ' + hint if hint else ''} (known: {', '.join(names)})")


@dataclass(frozen=True)
class Environment:
    """What this machine offers; probed by default, injected by tests."""

    cuda_devices: int = 0
    tensorrt_version: str | None = None
    torch_tensorrt: bool = False

    @staticmethod
    def probe() -> "Environment":
        import torch

        trt_version = None
        if importlib.util.find_spec("tensorrt") is not None:
            try:
                import tensorrt  # noqa: PLC0415  (optional extra)

                trt_version = str(tensorrt.__version__)
            except ImportError:
                trt_version = None
        return Environment(
            cuda_devices=torch.cuda.device_count() if torch.cuda.is_available() else 0,
            tensorrt_version=trt_version,
            torch_tensorrt=importlib.util.find_spec("torch_tensorrt") is not None,
        )


@dataclass(frozen=True)
class ExportRequest:
    """Everything `streamer export` was asked for, before validation."""

    model: str
    format: str
    precision: str
    output: Path
    weights: Path | None = None
    calib: Path | None = None
    size: tuple[int, int] | None = None  # H, W
    dynamic: tuple[Shape, Shape, Shape] | None = None  # min, opt, max
    workspace_gib: float | None = None
    device: int | None = None
    calib_frames: int = 32  # at most this many frames are read from --calib
    calib_method: str = DEFAULT_CALIB_METHOD  # one of CALIB_METHODS
    opset: int = 17
    int8_all: bool = False  # int8: also quantize what the model keeps fp32 (ModelSpec.int8_fp32)
    options: dict = field(default_factory=dict)  # format-specific extras, recorded in the sidecar


def check_calib_method(name: str) -> None:
    """One-line error for a range estimator we do not offer."""
    if name == "entropy":  # quantize_static gives it 128 histogram bins for 128 levels: min/max again
        raise ExportError("calibration method entropy: ONNX Runtime's quantize_static cannot set its histogram "
                          "size and reproduces minmax exactly; use percentile (default) or minmax")
    if name not in CALIB_METHODS:
        raise ExportError(f"calibration method {name}: unknown; use {' or '.join(CALIB_METHODS)}")


def parse_hw(text: str, what: str = "--size") -> tuple[int, int]:
    """``1280x720`` (WIDTHxHEIGHT, as every size on the command line) -> (720, 1280), height first
    like the tensors."""
    try:
        w, h = parse_wxh(text)
    except ValueError as exc:
        raise ExportError(f"{what} {text}: {exc}") from None
    return h, w


def parse_shape(text: str, what: str) -> Shape:
    """``1280x720`` or ``2x1280x720`` (batch first, then WIDTHxHEIGHT) -> (N, H, W)."""
    parts = text.lower().split("x")
    if len(parts) == 3:
        try:
            n = int(parts[0])
        except ValueError:
            raise ExportError(f"{what} {text}: expected [N]xWIDTHxHEIGHT, e.g. 1280x720 or 2x1280x720") from None
        return (n, *parse_hw("x".join(parts[1:]), what))
    return (1, *parse_hw(text, what))


def parse_dynamic(text: str) -> tuple[Shape, Shape, Shape]:
    """``640x352:1280x720:1920x1088`` -> (min, opt, max) as (N, H, W); each [N]xWIDTHxHEIGHT."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ExportError(f"--dynamic {text}: expected MIN:OPT:MAX, e.g. 640x352:1280x720:1920x1088")
    lo, opt, hi = (parse_shape(p, "--dynamic") for p in parts)
    for i, axis in enumerate(("batch", "height", "width")):
        if not lo[i] <= opt[i] <= hi[i]:
            raise ExportError(f"--dynamic {text}: {axis} must satisfy MIN <= OPT <= MAX")
    return lo, opt, hi


def _round_hint(value: int, multiple: int) -> str:
    down, up = value // multiple * multiple, -(-value // multiple) * multiple
    return f"{down} or {up}" if down > 0 else str(up)


def _check_multiple(shapes: list[Shape], multiple: int, flag: str, model: str) -> None:
    for _, h, w in shapes:
        for axis, v in (("height", h), ("width", w)):
            if v % multiple:
                raise ExportError(f"{flag}: {axis} {v} is not a multiple of {multiple} for model "
                                  f"{model}; use {_round_hint(v, multiple)}")


def validate_request(req: ExportRequest, *, env: Environment | None = None,
                     multiple: int = 1) -> ExportFormat:
    """Refuse contradictions before any work; returns the format row. ``multiple``: model's H/W step."""
    fmt = get_format(req.format)
    if req.precision not in PRECISIONS:
        hint = did_you_mean(req.precision, PRECISIONS)
        raise ExportError(f"--precision {req.precision}: unknown{'; ' + hint if hint else ''} (known: {', '.join(PRECISIONS)})")
    if req.precision not in fmt.precisions:
        if fmt.name == "onnx" and req.precision == "fp16":
            raise ExportError("--format onnx --precision fp16: not offered; ONNX Runtime on CPU runs "
                              "fp16 slower than fp32 and TensorRT makes its own fp16 from the fp32 "
                              "ONNX; use --format engine --precision fp16, or --precision fp32/int8")
        raise ExportError(f"--format {fmt.name}: precision {req.precision} not offered "
                          f"(offered: {', '.join(fmt.precisions)})")
    if req.output.suffix != fmt.suffix:
        raise ExportError(f"-o {req.output}: suffix {req.output.suffix or '(none)'} does not match "
                          f"--format {fmt.name}; use {req.output.with_suffix(fmt.suffix)}")
    given = {"size": req.size is not None, "dynamic": req.dynamic is not None,
             "calib": req.calib is not None, "workspace_gib": req.workspace_gib is not None,
             "device": req.device is not None}
    flags = {"size": "--size", "dynamic": "--dynamic", "calib": "--calib",
             "workspace_gib": "--workspace", "device": "--device"}
    for opt, on in given.items():
        if on and opt not in fmt.options:
            users = [f.name for f in FORMATS if opt in f.options]
            raise ExportError(f"{flags[opt]}: has no meaning for --format {fmt.name}; it applies to "
                              f"--format {' / '.join(users)}")
    if req.size is not None and req.dynamic is not None:
        raise ExportError("--size and --dynamic exclude each other; give a fixed size or a profile")
    if req.precision == "int8" and req.calib is None:
        raise ExportError(f"--format {fmt.name} --precision int8: needs calibration frames; add "
                          "--calib calib/ (the set shipped with streamer) or --calib YOUR_FOLDER_OR_VIDEO")
    if req.int8_all and req.precision != "int8":
        raise ExportError(f"--int8-all: only int8 has layers to keep fp32 or not, not {req.precision}; "
                          "drop --int8-all or use --precision int8")
    if req.precision != "int8" and req.calib is not None:
        raise ExportError(f"--calib: only int8 is calibrated, not {req.precision}; drop --calib "
                          "or use --precision int8")
    from streamer.export.calibration import resolve_calib  # cv2: only when a request is checked

    if req.calib is not None and not resolve_calib(req.calib).exists():  # `calib/`: the shipped set
        raise ExportError(f"--calib {req.calib}: not found; make one with `streamer calib make VIDEO -o {req.calib}`")
    check_calib_method(req.calib_method)
    if req.workspace_gib is not None and req.workspace_gib <= 0:
        raise ExportError(f"--workspace {req.workspace_gib}: must be a positive number of GiB")
    if req.opset < 17:
        raise ExportError(f"opset {req.opset}: too old; TensorRT 10 and this exporter need opset >= 17")
    if req.opset > (newest := _newest_opset()):
        raise ExportError(f"opset {req.opset}: this torch exports opsets 17–{newest}; use one of those")
    shapes = [(1, *req.size)] if req.size else list(req.dynamic or ())
    flag = "--size" if req.size else "--dynamic"
    _check_multiple(shapes, multiple, flag, req.model)
    if fmt.needs_gpu:
        _check_environment(fmt, req, env or Environment.probe())
    return fmt


def _check_environment(fmt: ExportFormat, req: ExportRequest, env: Environment) -> None:
    if fmt.name == "engine" and env.tensorrt_version is None:
        raise ExportError(f"--format engine: {TRT_EXPORT_MISSING}; "
                          "or export --format onnx here and build the engine on the target")
    if fmt.name == "torchtrt" and not env.torch_tensorrt:
        raise ExportError(f"--format torchtrt: needs torch-tensorrt: {install_extra('tensorrt')}")
    if env.cuda_devices == 0:
        raise ExportError(f"--format {fmt.name}: needs an NVIDIA GPU with CUDA and this machine has "
                          "none; build it on the target device, or use --format onnx")
    if req.device is not None and not 0 <= req.device < env.cuda_devices:
        raise ExportError(f"--device {req.device}: no such GPU; this machine has "
                          f"{env.cuda_devices} (0..{env.cuda_devices - 1})")


def _newest_opset() -> int:
    """The newest opset the installed torch's exporter writes (torch 2.13: 23)."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError):  # a private constant: if it moves, let the exporter judge
        return 10**6
