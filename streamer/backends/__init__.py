"""Inference engines behind one interface: ``open_backend(model, backend, device)``.

``model`` is a registered name (shipped safetensors weights) or a path: ``.safetensors`` (with
``arch``), ``.onnx`` (onnxruntime, openvino) or ``.engine`` (tensorrt). TensorRT and OpenVINO are imported
only on use.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from streamer.backends.base import Backend
from streamer.errors import ConfigError, EngineError, install_extra, looked_in

BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")
TRT_MISSING = (f"TensorRT backend needs the tensorrt extra: {install_extra('tensorrt')} (on a Jetson, "
               "JetPack's own python3-libnvinfer instead: docs/jetson.md)")


_TRT_FORMATS = {".engine": "engine", ".ep": "torchtrt"}  # suffix -> `streamer export --format`


def _load_module(model: str, arch: str | None) -> tuple[Any, int]:
    """A registered name or a .safetensors path -> (nn.Module with weights, size multiple)."""
    from streamer.models import get_spec
    from streamer.models.weights import build_with_weights, load_weights, spec_for_weights

    path = Path(model)
    if path.suffix == ".safetensors":
        spec = spec_for_weights(path, arch)
        return build_with_weights(spec, path), spec.multiple
    if path.suffix in {".pt", ".pth", ".ckpt", ".bin"}:
        return load_weights(get_spec(arch or "fast").build(), path), 1  # raises: no pickle
    spec = get_spec(model)
    if spec.weights_path is None:
        raise ConfigError(f"model {model!r} ships no weights; pass a .safetensors path with --arch {model}")
    return build_with_weights(spec, spec.weights_path), spec.multiple


def resolve_device(device: str | None, backend: str) -> str:
    """``None`` = where ``backend`` runs (cuda for tensorrt, else cpu); ``cpu``, ``cuda`` or
    ``cuda:N`` checked against the backend here, before any model is loaded."""
    if device is None:
        return "cuda" if backend == "tensorrt" else "cpu"
    name = str(device).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ConfigError(f"device {device!r}: use cpu, cuda or cuda:N")
    if backend == "tensorrt" and name == "cpu":
        raise ConfigError("device cpu: the tensorrt backend runs on a GPU; use cuda or cuda:N")
    if backend == "openvino" and name != "cpu":
        raise ConfigError(f"device {name}: the openvino backend runs on the CPU; use device cpu, or "
                          "torch/onnxruntime/tensorrt on a GPU")
    return name


def open_backend(model: str, backend: str = "torch", device: str | None = None, *,
                 arch: str | None = None, threads: int = 0, fp16: bool = True,
                 int8: bool | str = False, calib: str | Path | None = None, inflight: int = 1) -> Backend:
    """Build the engine that runs ``model``; errors name the file and what to do.

    ``int8`` (onnxruntime, openvino): run the calibrated INT8 file, built once and cached; ``"all"``
    quantizes the layers the model keeps fp32 too (`ModelSpec.int8_fp32`): faster, costs more gain.
    ``inflight`` (openvino, torch on cuda, tensorrt): frames in flight on the pipeline's uint8 path.
    """
    suffix = Path(model).suffix
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    device = resolve_device(device, backend)
    if threads < 0:
        raise ConfigError(f"threads {threads}: use 0 (the runtime's default: all cores) or a count")
    if suffix in {".onnx", ".engine", ".ep"} and not Path(model).is_file():  # before which backend it needs
        kind, how = (("ONNX file", "export it with `streamer export`") if suffix == ".onnx" else
                     ("engine", f"build it on the device with `streamer export --format {_TRT_FORMATS[suffix]}`"))
        raise EngineError(f"{model}: {kind} not found{looked_in(model)}; {how}")
    if int8 not in (False, True, "all"):
        raise ConfigError(f"int8 {int8!r}: use true, false or all")
    if int8:
        if backend not in ("onnxruntime", "openvino"):
            hint = ("build an INT8 engine with `streamer export --format engine --precision int8`"
                    if backend == "tensorrt" else "use --no-int8 (or int8: false) for the fp32 model")
            raise ConfigError(f"int8 is for the CPU backends onnxruntime and openvino, not {backend}; {hint}")
        from streamer.backends.int8_cache import int8_onnx

        model, suffix = str(int8_onnx(model, arch, calib, all_layers=int8 == "all")), ".onnx"  # None: shipped set
    if backend == "tensorrt":
        try:
            trt = importlib.import_module("streamer.backends.trt_backend")
        except ModuleNotFoundError as exc:
            if exc.name not in {"streamer.backends.trt_backend", "tensorrt", "torch_tensorrt"}:
                raise
            raise EngineError(TRT_MISSING) from exc
        return trt.open_trt_backend(model, device=device, arch=arch, fp16=fp16, inflight=inflight)
    if suffix in _TRT_FORMATS:
        raise ConfigError(f"{model}: a TensorRT engine needs --backend tensorrt")
    if backend == "onnxruntime":
        from streamer.backends.ort_backend import OrtBackend, onnx_bytes

        if suffix == ".onnx":
            return OrtBackend(model, device=device, threads=threads, label=model)
        module, multiple = _load_module(model, arch)
        return OrtBackend(onnx_bytes(module), device=device, threads=threads, multiple=multiple,
                          label=f"{model} (exported in memory)")
    if backend == "openvino":
        from streamer.backends.ort_backend import onnx_bytes
        from streamer.backends.ov_backend import OpenVinoBackend

        if suffix == ".onnx":
            return OpenVinoBackend(model, threads=threads, label=model, inflight=inflight)
        module, multiple = _load_module(model, arch)
        return OpenVinoBackend(onnx_bytes(module), threads=threads, multiple=multiple,
                               label=f"{model} (exported in memory)", inflight=inflight)
    if suffix == ".onnx":
        raise ConfigError(f"{model}: an ONNX file needs --backend onnxruntime or openvino")
    from streamer.backends.torch_backend import TorchBackend

    module, multiple = _load_module(model, arch)
    return TorchBackend(module, device=device, fp16=fp16, threads=threads, multiple=multiple,
                        inflight=inflight)


__all__ = ["BACKENDS", "Backend", "open_backend"]
