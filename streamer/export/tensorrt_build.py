"""ONNX -> TensorRT engine with the TensorRT Python API (imported on use).

* FP16: the fp32 ONNX with the FP16 builder flag (TensorRT keeps fp32 where fp16 would overflow).
* INT8, TensorRT < 10: implicit quantization with an ``IInt8EntropyCalibrator2`` over the
  calibration frames; its cache is keyed by model hash + data hash + TensorRT version + shape, so a
  cache is never reused for another model or other frames (Ultralytics reuses it by name alone).
* INT8, TensorRT >= 10: implicit calibration is deprecated, so we build from an explicitly
  quantized QDQ ONNX (symmetric int8, from :mod:`streamer.export.ort_int8`, same frames).
* One optimization profile (min/opt/max), a workspace limit, and progress through
  ``trt.IProgressMonitor`` (TensorRT >= 10) reported to a callback: the CLI draws it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from streamer.errors import ExportError
from streamer.export.calibration import CalibSet, fit_cover
from streamer.export.formats import TRT_EXPORT_MISSING

log = logging.getLogger(__name__)
Shape = tuple[int, int, int]
Progress = Callable[[str, int, int], None]  # (phase, step, steps)


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt  # optional extra, never at module import
    except ImportError as exc:
        raise ExportError(TRT_EXPORT_MISSING) from exc
    return trt


def trt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


@dataclass
class BuildResult:
    """What was built; goes into the sidecar."""

    path: Path
    tensorrt_version: str
    profile: dict[str, list[int]]
    int8_mode: str | None = None  # "implicit-calibrator" | "explicit-qdq"
    calib_cache: str | None = None
    flags: list[str] = field(default_factory=list)


def calib_cache_key(model_sha256: str, data_sha256: str, trt_version: str, shape: Shape) -> str:
    """Caches are valid only for this model, these frames, this TensorRT and this shape."""
    text = f"{model_sha256}:{data_sha256}:{trt_version}:{'x'.join(map(str, shape))}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def calibration_batches(calib: CalibSet, shape: Shape) -> list[np.ndarray]:
    """Frames resized to the profile's opt H×W and grouped N at a time (the calibration profile)."""
    n, h, w = shape
    frames = [fit_cover(f, (h, w)).transpose(2, 0, 1).astype(np.float32) / 255.0 for f in calib.frames]
    return [np.ascontiguousarray(np.stack(frames[i:i + n])) for i in range(0, len(frames) - n + 1, n)]


def _make_calibrator(trt: Any, batches: list[np.ndarray], cache: Path) -> Any:
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """Feeds calibration batches from CUDA memory held by torch (no pycuda)."""

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = batches
            self._i = 0
            self._current: torch.Tensor | None = None  # keeps the device buffer alive

        def get_batch_size(self) -> int:
            return int(batches[0].shape[0]) if batches else 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._i >= len(self._batches):
                return None
            self._current = torch.from_numpy(self._batches[self._i]).cuda()
            self._i += 1
            return [int(self._current.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            if cache.exists():
                log.info("reusing calibration cache %s", cache)
                return cache.read_bytes()
            return None

        def write_calibration_cache(self, data: Any) -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()


def _progress_monitor(trt: Any, progress: Progress) -> Any | None:
    if not hasattr(trt, "IProgressMonitor"):  # TensorRT < 10
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._steps[phase_name] = num_steps
            progress(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress(phase_name, step + 1, self._steps.get(phase_name, 0))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            steps = self._steps.pop(phase_name, 0)
            progress(phase_name, steps, steps)

    return Monitor()


def _parse(trt: Any, builder: Any, onnx_path: Path) -> tuple[Any, Any]:
    """(network, parser): the parser owns weights the network points at, so both must live."""
    flags = 0
    if trt_major(trt) < 10:  # explicit batch is the only mode from 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt.Logger(trt.Logger.WARNING))
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{onnx_path}: TensorRT cannot parse it ({errors}); export it again "
                          "with opset 17 or report the model name")
    return network, parser


def build_engine(onnx_path: str | Path, out_path: str | Path, *, precision: str,
                 profile: tuple[Shape, Shape, Shape], workspace_gib: float = 2.0, device: int = 0,
                 calib: CalibSet | None = None, model_sha256: str = "",
                 qdq_onnx: Path | None = None, cache_dir: Path | None = None,
                 progress: Progress | None = None) -> BuildResult:
    """Build and serialize an engine. ``qdq_onnx`` (symmetric int8 QDQ) is required for int8 on TensorRT >= 10."""
    trt = import_tensorrt()
    import torch

    out_path = Path(out_path)
    torch.cuda.set_device(device)  # TensorRT builds on the current CUDA device
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    explicit = precision == "int8" and trt_major(trt) >= 10
    if explicit and qdq_onnx is None:
        raise ExportError(f"{out_path}: TensorRT {trt.__version__} builds int8 only from a QDQ ONNX; "
                          "pass the calibration frames so one can be made")
    network, _parser = _parse(trt, builder, Path(qdq_onnx if explicit else onnx_path))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    name = network.get_input(0).name
    lo, opt, hi = ((n, 3, h, w) for n, h, w in profile)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    result = BuildResult(out_path, str(trt.__version__),
                         {"min": list(lo), "opt": list(opt), "max": list(hi)})
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: TF32 would quietly drop 13 mantissa bits
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8: layers left unquantized run in fp16
        result.flags.append("FP16")
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        result.flags.append("INT8")
        if explicit:
            result.int8_mode = "explicit-qdq"
        else:
            if calib is None:
                raise ExportError(f"{out_path}: int8 needs calibration frames (--calib)")
            key = calib_cache_key(model_sha256, calib.sha256, str(trt.__version__), profile[1])
            cache = (cache_dir or out_path.parent / "calib-cache") / f"{out_path.stem}-{key}.cache"
            config.int8_calibrator = _make_calibrator(trt, calibration_batches(calib, profile[1]), cache)
            config.set_calibration_profile(opt_profile)
            result.int8_mode, result.calib_cache = "implicit-calibrator", str(cache)
    if progress is not None:
        monitor = _progress_monitor(trt, progress)
        if monitor is not None:
            config.progress_monitor = monitor
    log.info("building TensorRT %s engine %s (%s), profile %s", precision, out_path, trt.__version__,
             result.profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"{out_path}: TensorRT build failed (see the TensorRT messages above); "
                          "try a larger --workspace or a smaller --dynamic MAX")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(bytes(serialized))
    return result
