"""JSON sidecar next to every exported file, and the check that an engine fits this device.

A TensorRT engine is only valid for the TensorRT version and GPU architecture that built it;
deserializing it elsewhere fails deep inside TensorRT (or worse, crashes). The sidecar lets us say
what is wrong in one line before TensorRT ever sees the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

import streamer
from streamer.errors import EngineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuInfo:
    """Name and compute capability ("8.7" = Orin, "9.0" = H100)."""

    name: str
    capability: str

    @property
    def sm(self) -> str:
        return "sm_" + self.capability.replace(".", "")


class Sidecar(BaseModel):
    """What was built, from what, where, and how close it is to PyTorch. Keys a newer streamer
    adds are ignored, so its sidecars still load here."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model: str
    format: str
    precision: str
    file: str
    weights_sha256: str | None = None
    model_sha256: str | None = None  # of the exported file itself
    input_name: str = "input"
    output_name: str = "output"
    shapes: dict[str, Any] = Field(default_factory=dict)  # {"fixed": [n,h,w]} or min/opt/max
    multiple: int | None = None  # frames are padded to this (FastNet 16); None in older sidecars
    tensorrt_version: str | None = None
    torch_tensorrt_version: str | None = None
    onnxruntime_version: str | None = None
    gpu: GpuInfo | None = None  # what built a TensorRT engine
    calibration: dict[str, Any] | None = None  # data hash, frames, method, cache
    parity: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    created: str = ""
    streamer_version: str = ""


def sidecar_path(path: str | Path) -> Path:
    """``engines/fast.engine`` -> ``engines/fast.engine.json`` (keeps the suffix visible)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_sidecar(path: str | Path, sidecar: Sidecar) -> Path:
    if not sidecar.created:
        sidecar.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if not sidecar.streamer_version:
        sidecar.streamer_version = streamer.__version__
    out = sidecar_path(path)
    out.write_text(json.dumps(sidecar.model_dump(mode="json"), indent=2) + "\n")  # ASCII, any locale
    return out


def read_sidecar(path: str | Path) -> Sidecar:
    """Read the sidecar of an exported file; a missing or broken one is an EngineError."""
    side = sidecar_path(path)
    if not side.exists():
        raise EngineError(f"{path}: no sidecar {side.name} to check it against this device; "
                          "rebuild it with `streamer export`")
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise EngineError(f"{side}: unreadable sidecar ({exc}); rebuild the engine with `streamer export`") from exc
    try:
        return Sidecar.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the whole file"
        raise EngineError(f"{side}: damaged sidecar, {where}: {first['msg']}; rebuild the engine with "
                          "`streamer export`") from exc


def current_tensorrt_version() -> str | None:
    try:
        import tensorrt as trt  # optional extra
    except ImportError:
        return None
    return str(trt.__version__)


def current_gpu(device: int = 0) -> GpuInfo | None:
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return GpuInfo(torch.cuda.get_device_name(device), f"{major}.{minor}")


def check_engine_compatible(path: str | Path, *, tensorrt_version: str | None = None,
                            gpu: GpuInfo | None = None, model: str | None = None,
                            device: int = 0) -> Sidecar:
    """Raise EngineError unless the engine at ``path`` was built by this TensorRT on this GPU arch.

    ``tensorrt_version``/``gpu`` default to what this machine has (tests inject them). Engines are
    built without TensorRT's version/hardware compatibility modes, so the TensorRT version (to the
    patch: 8.5.1 refuses 8.5.3's engines) and the compute capability must both match exactly; a
    different GPU of the same architecture (Orin NX and Orin Nano are both sm_87) runs it, tuned
    for the other one, with a warning.
    """
    side = read_sidecar(path)
    if side.format not in ("engine", "torchtrt"):
        raise EngineError(f"{path}: sidecar says format {side.format!r}, not a TensorRT engine; "
                          "use the onnxruntime backend for it")
    if model is not None and side.model != model:
        raise EngineError(f"{path}: built for model {side.model}, not {model}; "
                          f"export {model} or pick the model the engine was built for")
    built = side.tensorrt_version
    now = tensorrt_version or current_tensorrt_version()
    if now is None:
        from streamer.backends import TRT_MISSING

        raise EngineError(f"{path}: {TRT_MISSING}")
    if built != now:
        raise EngineError(f"{path}: built by TensorRT {built or 'unknown'}, this is {now}; "
                          "rebuild it on this device")
    here = gpu or current_gpu(device)
    if here is None:
        raise EngineError(f"{path}: needs an NVIDIA GPU and this machine has none; "
                          "use --backend onnxruntime with the ONNX model")
    built_gpu = side.gpu
    if built_gpu is None or built_gpu.capability != here.capability:
        was = f"{built_gpu.name} ({built_gpu.sm})" if built_gpu else "an unknown GPU"
        raise EngineError(f"{path}: built for GPU {was}, this is {here.name} ({here.sm}); "
                          "rebuild it on this device")
    if built_gpu.name != here.name:
        log.warning("%s: built on %s, running on %s (same architecture): it runs, tuned for the other "
                    "GPU; rebuild it here for full speed", path, built_gpu.name, here.name)
    return side
