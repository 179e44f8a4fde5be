"""What this machine can run: versions, CPU/GPU, backends, the RTSP server, cameras, INT8 cache.

`streamer info` prints it (the first thing to run on a new Jetson or camera box, and to paste
into a bug report); `streamer bench` embeds versions() and host() so a number always travels
with the machine that measured it. Optional packages are probed, never required.
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

OPTIONAL = ("openvino", "tensorrt", "torch_tensorrt", "onnx", "ray", "scikit_image", "scipy")  # scikit-image, SciPy: the eval extra
# CPU features that set INT8 and float speed, best first (x86: /proc/cpuinfo "flags"; Arm, e.g.
# Jetson: "Features"), so a speed number travels with what its host could do (README, Measured)
ISA = ("amx_int8", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512f", "avx2", "i8mm", "asimddp", "asimd")
INT8_DOT = frozenset({"amx_int8", "avx512_vnni", "avx_vnni", "i8mm", "asimddp"})  # INT8 dot-product instructions


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def git(*args: str) -> str | None:
    """Git in streamer's own checkout (not the working folder: training from another project's
    repository would record that repository's commit); None when streamer is not a checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # an installed copy: git would find whatever repo holds the venv
        return None
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=5,
                              cwd=root).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def code_changed() -> bool | None:
    """Uncommitted changes to the code or configs: then the commit alone is not the recipe."""
    # --no-optional-locks: a status must not take index.lock from under the user's own git commit
    status = git("--no-optional-locks", "status", "--porcelain", "--", "streamer", "configs", "scripts")
    return None if status is None else bool(status)


def versions() -> dict[str, str]:
    import av
    import onnxruntime
    import torch

    from streamer import __version__

    return {"streamer": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "av": av.__version__,
            "ffmpeg": _ffmpeg_version(av),
            "numpy": np.__version__, **_commit()}


def _commit() -> dict[str, str]:
    """A checkout's commit (``+dirty`` with uncommitted code), so a bench number traces to its code;
    nothing for an installed copy, whose version says it."""
    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return {}
    changed = code_changed()
    return {"commit": commit + {True: "+dirty", False: "", None: "+unknown"}[changed]}


def _ffmpeg_version(av: Any) -> str:
    """FFmpeg's release (PyAV's bundled one), else libavcodec's version, named as such."""
    release = getattr(av, "ffmpeg_version_info", None)
    if release:
        return str(release)
    return "libavcodec " + ".".join(map(str, av.library_versions.get("libavcodec", ())))


def optional_versions() -> dict[str, str | None]:
    """Installed optional packages (None: not installed), read from metadata without importing."""
    return {name: _dist_version(name.replace("_", "-")) for name in OPTIONAL}


def host() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"node": platform.node(), "os": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "cpu_isa": cpu_isa(), "gpu": gpu, "load_avg": [round(v, 2) for v in os.getloadavg()]}


def cpu_isa(cpuinfo: str | None = None) -> list[str]:
    """The ``ISA`` features this CPU has, best first (empty where /proc/cpuinfo is not readable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return [f for f in ISA if f in flags]


def backends() -> dict[str, dict[str, Any]]:
    """Each inference backend: usable here or not, on which devices, and if not, what to install."""
    import onnxruntime
    import torch

    from streamer.backends import TRT_MISSING
    from streamer.backends.ov_backend import OV_MISSING, shared_core

    cuda = [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    out: dict[str, dict[str, Any]] = {
        "torch": {"available": True, "devices": ["cpu", *cuda]},
        "onnxruntime": {"available": True, "providers": onnxruntime.get_available_providers()},
    }
    try:
        out["openvino"] = {"available": True, "devices": shared_core().available_devices}
    except ImportError:
        out["openvino"] = {"available": False, "reason": OV_MISSING}
    try:
        import tensorrt

        out["tensorrt"] = {"available": bool(cuda), "version": tensorrt.__version__}
        if not cuda:
            out["tensorrt"]["reason"] = "TensorRT is installed but torch sees no CUDA GPU"
    except ImportError:
        out["tensorrt"] = {"available": False, "reason": TRT_MISSING}
    return out


def rtsp_server() -> dict[str, Any]:
    """Whether `rtsp-serve://` can start: gst-rtsp-server's Python bindings in the system python."""
    from streamer.errors import StreamerError
    from streamer.sinks.rtsp_serve import APT_PACKAGES, gst_python

    try:
        python = gst_python()
    except StreamerError as exc:
        return {"available": False, "reason": str(exc)}
    probe = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')"
    try:
        ok = subprocess.run([python, "-c", probe], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if ok:
        return {"available": True, "python": python}
    return {"available": False, "python": python,
            "reason": f"{python} lacks gst-rtsp-server bindings; apt-get install {APT_PACKAGES}"}


def cameras() -> list[str]:
    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


def int8_cache() -> dict[str, Any]:
    from streamer.backends.int8_cache import cached_models, int8_dir

    return {"dir": str(int8_dir()), "models": len(cached_models())}


def report() -> dict[str, Any]:
    return {"versions": versions(), "optional": optional_versions(), "host": host(),
            "backends": backends(), "rtsp_server": rtsp_server(), "cameras": cameras(),
            "int8_cache": int8_cache()}
