"""INT8 for the CPU runtimes without a separate export step: `backend: {int8: true}`.

The first run quantizes the model exactly as `streamer export --format onnx --precision int8`
does (ONNX Runtime static QDQ, calibrated on the calibration frames) and keeps the file in a
cache keyed by the hashes of the weights, the calibration frames and the code that builds and
quantizes the graph (streamer/models, streamer/export: an upgrade that changes the network or
which nodes stay fp32 must not reuse an old file); later runs open it at once.
ONNX Runtime and OpenVINO both run that file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

from streamer.errors import ConfigError, WeightsError, check_output, looked_in
from streamer.export.calibration import DEFAULT_CALIB, resolve_calib

log = logging.getLogger(__name__)
_BUILD_LOCK = threading.Lock()  # Cleaners opened in several threads quantize a model once


def cache_dir() -> Path:
    """$STREAMER_CACHE, else $XDG_CACHE_HOME/streamer, else ~/.cache/streamer."""
    if os.environ.get("STREAMER_CACHE"):
        return Path(os.environ["STREAMER_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "streamer"


def int8_dir() -> Path:
    return cache_dir() / "int8"


def cached_models() -> list[Path]:
    """The finished INT8 files (a quantization in progress writes NAME.PID.tmp.onnx first)."""
    folder = int8_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.onnx") if not p.name.endswith(".tmp.onnx"))


def _tree_sha(folder: Path, pattern: str = "*") -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob(pattern)):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _code_sha() -> str:
    """The Python sources that decide the INT8 graph: the architectures and the exporter."""
    root = Path(__file__).resolve().parent.parent
    return ":".join(_tree_sha(root / pkg, "*.py") for pkg in ("models", "export"))


def int8_onnx(model: str, arch: str | None = None, calib: str | Path | None = DEFAULT_CALIB, *,
              all_layers: bool = False) -> Path:
    """Path of the calibrated INT8 ONNX for a registered model or a .safetensors file;
    ``all_layers`` quantizes the parts the model keeps fp32 too (`streamer export --int8-all`)."""
    from streamer.export import export
    from streamer.export.formats import ExportRequest
    from streamer.models import get_spec
    from streamer.models.weights import sha256_file, spec_for_weights

    path = Path(model)
    if path.suffix in {".onnx", ".engine"}:
        raise ConfigError(f"{model}: int8 quantizes a registered model or .safetensors weights, and this "
                          "file is already exported; run it with --no-int8 (or int8: false): an INT8 "
                          "export runs as INT8 as it is")
    if path.suffix == ".safetensors" and not path.is_file():  # before the architecture is read from it
        raise WeightsError(f"{model}: weights file not found{looked_in(path)}")
    spec = spec_for_weights(path, arch) if path.suffix == ".safetensors" else get_spec(model)
    weights = path if path.suffix == ".safetensors" else spec.weights_path
    if weights is None or not Path(weights).is_file():
        raise ConfigError(f"model {spec.name}: no weights to quantize")
    calib = resolve_calib(calib)
    if not calib.exists():
        raise ConfigError(f"{calib}: calibration frames not found; int8 needs them (leave calib unset "
                          "for the set shipped with streamer, or make some with `streamer calib make`)")
    data = _tree_sha(calib) if calib.is_dir() else sha256_file(calib)
    key = hashlib.sha256(f"{sha256_file(weights)}:{data}:{_code_sha()}".encode()).hexdigest()[:16]
    out = int8_dir() / f"{spec.name}{'-all' if all_layers else ''}-{key}.onnx"
    with _BUILD_LOCK:
        if not out.exists():
            check_output(out.parent, "INT8 cache", folder=True, hint=(  # read-only roots are common on dashcams
                "set STREAMER_CACHE to a writable folder, or run an INT8 file made with "
                "`streamer export --format onnx --precision int8`"))
            log.info("quantizing %s to INT8 with %s (once; cached in %s)", spec.name, calib, out.parent)
            tmp = out.with_name(out.stem + f".{os.getpid()}.tmp.onnx")  # other processes: own names
            export(ExportRequest(model=spec.name, format="onnx", precision="int8", output=tmp,
                                 weights=Path(weights), calib=calib, int8_all=all_layers))
            tmp.replace(out)
            tmp.with_name(tmp.name + ".json").replace(out.with_name(out.name + ".json"))
    return out
