"""RTSP server sink (``rtsp-serve://127.0.0.1:8554/clean``): ffplay, VLC, OpenCV, PyAV pull H.264.

Wiring (for ``open_sink``)::

    RtspServeSink(url: str, fps: float = 25.0, width: int | None = None, height: int | None = None, *,
                  token: str | None = None, user: str = "streamer", side_by_side: bool = False,
                  encoder: EncoderConfig | None = None)

The server is GStreamer's gst-rtsp-server. Its Python bindings (Debian python3-gi,
gir1.2-gst-rtsp-server-1.0) exist only for the system python, so it runs as a child process
(``rtsp_serve_gst.py`` under ``$STREAMER_GST_PYTHON`` or /usr/bin/python3) fed raw RGB frames
over a pipe; GStreamer encodes (x264, zerolatency) only while a client is connected, and all
clients share that one encoder. With ``width``/``height`` the server starts in the constructor;
without, on the first frame (its size). Other frame sizes are scaled to the stream's size.

Bound beyond loopback it needs ``token`` (or ``$STREAMER_TOKEN``): clients then log in with RTSP
basic auth, ``rtsp://streamer:TOKEN@host:8554/clean``.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

import cv2
import numpy as np

from streamer.config import EncoderConfig
from streamer.errors import ConfigError, SinkError
from streamer.frame import Frame
from streamer.sinks.encode import compose
from streamer.sinks.view.access import resolve_token

log = logging.getLogger(__name__)
SCRIPT = Path(__file__).with_name("rtsp_serve_gst.py")
PYTHON_ENV = "STREAMER_GST_PYTHON"
APT_PACKAGES = ("python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
                "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly")
_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")
_X264_PRESETS = {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                 "veryslow", "placebo"}
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0


def gst_python() -> str:
    """The interpreter that has python3-gi: ``$STREAMER_GST_PYTHON``, else the system python."""
    override = os.environ.get(PYTHON_ENV)
    if override:
        found = shutil.which(override)
        if found is None:
            raise SinkError(f"rtsp-serve: {PYTHON_ENV}={override} is not an executable; "
                            "point it at a python3 that has python3-gi (usually /usr/bin/python3)")
        return found
    for candidate in _PYTHONS:
        found = shutil.which(candidate)
        if found is not None:
            return found
    raise SinkError("rtsp-serve: no system python3 found to run GStreamer's RTSP server; "
                    f"install it: sudo apt install {APT_PACKAGES} (or set {PYTHON_ENV})")


def _child_env(user: str, password: str | None) -> dict[str, str]:
    """The system python must not see the venv (its site-packages are for another interpreter)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.pop("STREAMER_RTSP_PASSWORD", None)
    env["STREAMER_RTSP_USER"] = user
    if password:
        env["STREAMER_RTSP_PASSWORD"] = password
    return env


def check_available(timeout_s: float = _START_TIMEOUT_S) -> str | None:
    """None when the GStreamer RTSP server can run here, else the one-line reason (for skips)."""
    try:
        python = gst_python()
    except SinkError as exc:
        return str(exc)
    try:
        out = subprocess.run([python, str(SCRIPT), "--check", "--width", "2", "--height", "2"],
                             capture_output=True, text=True, timeout=timeout_s, env=_child_env("x", None))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"rtsp-serve: {python} cannot run the GStreamer check ({exc})"
    line = (out.stdout.strip().splitlines() or [""])[0]
    return None if line.startswith("READY") else line.removeprefix("ERROR ") or out.stderr.strip()[-300:]


def parse_url(url: str) -> tuple[str, int, str]:
    """``rtsp-serve://HOST:PORT/PATH`` -> (host, port, /path); defaults 127.0.0.1, 8554, /clean."""
    parts = urlsplit(url)
    if parts.scheme != "rtsp-serve":
        raise ConfigError(f"sink {url!r}: expected rtsp-serve://HOST:PORT/PATH, e.g. rtsp-serve://127.0.0.1:8554/clean")
    try:
        port = parts.port if parts.port is not None else 8554
    except ValueError as exc:
        raise ConfigError(f"sink {url!r}: bad port ({exc}); e.g. rtsp-serve://127.0.0.1:8554/clean") from exc
    path = parts.path if parts.path not in ("", "/") else "/clean"
    if parts.query or parts.fragment or not path.replace("/", "").replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"sink {url!r}: mount path must be letters, digits, - _ and /, e.g. /clean")
    return parts.hostname or "127.0.0.1", port, path


class RtspServeSink:
    """Serve the cleaned stream over RTSP; ``client_url`` is what to give ffplay/VLC/OpenCV."""

    def __init__(self, url: str, fps: float = 25.0, width: int | None = None, height: int | None = None, *,
                 token: str | None = None, user: str = "streamer", side_by_side: bool = False,
                 encoder: EncoderConfig | None = None) -> None:
        self.host, self.port, self.path = parse_url(url)
        self.token = resolve_token("rtsp-serve sink", self.host, token)
        self.user = user
        self.fps = fps if fps and fps > 0 else 25.0
        self.size = (width, height) if width and height else None
        self.side_by_side = side_by_side
        self.encoder = encoder or EncoderConfig()
        self._python = gst_python()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_tail: deque[str] = deque(maxlen=5)
        self._closed = False
        if self.size is not None:
            self._start(*self.size)

    @property
    def client_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        login = f"{quote(self.user)}:{quote(self.token, safe='')}@" if self.token else ""
        return f"rtsp://{login}{host}:{self.port}{self.path}"

    def _args(self, width: int, height: int) -> list[str]:
        preset = self.encoder.preset if self.encoder.preset in _X264_PRESETS else "veryfast"
        keyint = max(1, round(self.encoder.keyframe_s * self.fps))
        return [self._python, str(SCRIPT), "--host", self.host, "--port", str(self.port), "--path", self.path,
                "--width", str(width), "--height", str(height), "--fps", f"{self.fps:.3f}",
                "--preset", preset, "--quantizer", str(self.encoder.crf), "--keyint", str(keyint)]

    def _start(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise SinkError(f"rtsp-serve: stream size {width}x{height} must be even (H.264 4:2:0)")
        try:
            proc = subprocess.Popen(self._args(width, height), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=_child_env(self.user, self.token))
        except OSError as exc:
            raise SinkError(f"rtsp-serve: cannot start {self._python} ({exc.strerror}); "
                            f"install: sudo apt install {APT_PACKAGES}") from exc
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines.put), daemon=True, name="rtsp-serve-out").start()
        threading.Thread(target=_pump, args=(proc.stderr, self._log_stderr), daemon=True,
                         name="rtsp-serve-err").start()
        try:
            line = lines.get(timeout=_START_TIMEOUT_S)
        except queue.Empty:
            line = "ERROR did not report READY within %.0f s" % _START_TIMEOUT_S
        if not line.startswith("READY"):
            _stop(proc)
            reason = line.removeprefix("ERROR ").strip() or " / ".join(self._stderr_tail) or "exited"
            raise SinkError(f"rtsp-serve {self.host}:{self.port}{self.path}: {reason}")
        self.port = int(line.split()[1])
        self.size = (width, height)
        self._proc = proc
        shown = self.client_url.replace(f":{self.token}@", ":***@") if self.token else self.client_url
        if self.host in ("0.0.0.0", "::", ""):  # every interface: clients use this machine's address
            shown = shown.replace("@127.0.0.1:", "@<this-host>:").replace("//127.0.0.1:", "//<this-host>:")
        log.info("serving RTSP on %s (%dx%d)", shown, width, height)

    def _log_stderr(self, line: str) -> None:
        self._stderr_tail.append(line)
        log.debug("gst-rtsp-server: %s", line)

    def write(self, frame: Frame) -> None:
        if self._closed:
            return
        image = compose(frame, self.side_by_side)
        if self._proc is None:
            self._start(image.shape[1], image.shape[0])
        width, height = self.size  # type: ignore[misc]
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        try:
            self._proc.stdin.write(np.ascontiguousarray(image).data)  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError, OSError) as exc:
            tail = " / ".join(self._stderr_tail) or f"exit code {self._proc.poll()}"  # type: ignore[union-attr]
            raise SinkError(f"rtsp-serve {self.host}:{self.port}{self.path}: server process died ({tail}); "
                            "run with --debug for GStreamer's log") from exc

    def close(self) -> None:
        """Stop the server (clients see end of stream); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._proc is not None:
            _stop(self._proc)

    def __enter__(self) -> RtspServeSink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _pump(stream: IO[bytes] | None, emit: Any) -> None:
    if stream is None:
        return
    for raw in stream:
        emit(raw.decode(errors="replace").rstrip())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """EOF on stdin is the polite stop; then terminate, then kill."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_rtsp_serve_sink(spec: str, *, encoder: EncoderConfig | None = None, side_by_side: bool = False,
                         fps: float = 0.0, **options: Any) -> RtspServeSink:
    """``open_sink``'s entry: size comes from the first frame; ``options`` may carry token/user/width/height."""
    return RtspServeSink(spec, fps or 25.0, options.pop("width", None), options.pop("height", None),
                         encoder=encoder, side_by_side=side_by_side, **options)
