"""RTSP server sink (``rtsp-serve://127.0.0.1:8554/clean``): ffplay, VLC, OpenCV, PyAV pull H.264.

Wiring (for ``open_sink``)::

    RtspServeSink(url: str, fps: float = 25.0, width: int | None = None, height: int | None = None, *,
                  token: str | None = None, user: str = "streamer", side_by_side: bool = False,
                  encoder: EncoderConfig | None = None, server: RtspServer | None = None)

The server is GStreamer's gst-rtsp-server. Its Python bindings (Debian python3-gi,
gir1.2-gst-rtsp-server-1.0) exist only for the system python, so it runs as a child process
(``rtsp_serve_gst.py`` under ``$STREAMER_GST_PYTHON`` or /usr/bin/python3) fed raw RGB frames
over a pipe; GStreamer encodes (x264, zerolatency) only while a client is connected, and all
clients share that one encoder. One process per host:port (``RtspServer``), listening from the
constructor on, serves a mount per sink: ``SinkPool`` gives a site's cameras on one port the
same server. With ``width``/``height`` the mount is made in the constructor; without, at the
first frame (its size). Other frame sizes are scaled to the stream's size.

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

from streamer.config import EncoderConfig, sink_kind, stream_target
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
        out = subprocess.run([python, str(SCRIPT), "--check"],
                             capture_output=True, text=True, timeout=timeout_s, env=_child_env("x", None))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"rtsp-serve: {python} cannot run the GStreamer check ({exc})"
    line = (out.stdout.strip().splitlines() or [""])[0]
    return None if line.startswith("READY") else line.removeprefix("ERROR ") or out.stderr.strip()[-300:]


def parse_url(url: str) -> tuple[str, int, str]:
    """``rtsp-serve://HOST:PORT/PATH`` -> (host, port, /path), checked; the defaults (127.0.0.1,
    8554, /clean) are ``config.stream_target``'s, so the config's check and the pool agree."""
    parts = urlsplit(url)
    if sink_kind(url) != "rtsp-serve":
        raise ConfigError(f"sink {url!r}: expected rtsp-serve://HOST:PORT/PATH, e.g. rtsp-serve://127.0.0.1:8554/clean")
    try:
        parts.port
    except ValueError as exc:
        raise ConfigError(f"sink {url!r}: bad port ({exc}); e.g. rtsp-serve://127.0.0.1:8554/clean") from exc
    _, host, port, path = stream_target(url)  # type: ignore[misc]  an rtsp-serve URL with a port
    if parts.query or parts.fragment or not path.replace("/", "").replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"sink {url!r}: mount path must be letters, digits, - _ and /, e.g. /clean")
    return host, port, path


class RtspServer:
    """One gst-rtsp-server process listening on ``host:port``, serving any number of mounts: the
    cameras of a site share a port, each with its own path (``rtsp-serve://HOST:PORT/{camera}``).
    It listens from the constructor on; each ``RtspServeSink`` holds it and the last one closed
    stops it. Frames of all mounts go down one pipe, a command line before each."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8554, *, token: str | None = None,
                 user: str = "streamer") -> None:
        self.host, self.port = host, port
        self.token = resolve_token("rtsp-serve sink", host, token)
        self.user = user
        self._python = gst_python()
        self._stderr_tail: deque[str] = deque(maxlen=5)
        self._lock = threading.Lock()  # one command (line + frame) at a time, from any camera's thread
        self._paths: dict[str, int] = {}  # mount path -> id
        self._next_id = 0
        self._users = 0  # sinks holding it
        self._closed = False
        self._proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        args = [self._python, str(SCRIPT), "--host", self.host, "--port", str(self.port)]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=_child_env(self.user, self.token))
        except OSError as exc:
            raise SinkError(f"rtsp-serve: cannot start {self._python} ({exc.strerror}); "
                            f"install: sudo apt install {APT_PACKAGES}") from exc
        self._lines: queue.Queue[str] = queue.Queue()
        lines = self._lines
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
            raise SinkError(f"rtsp-serve {self.host}:{self.port}: {reason}")
        self.port = int(line.split()[1])
        return proc

    def _log_stderr(self, line: str) -> None:
        self._stderr_tail.append(line)
        log.debug("gst-rtsp-server: %s", line)

    @property
    def closed(self) -> bool:
        return self._closed

    def client_url(self, path: str) -> str:
        """What to give ffplay/VLC/OpenCV for ``path`` (with the login when a token is set)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        login = f"{quote(self.user)}:{quote(self.token, safe='')}@" if self.token else ""
        return f"rtsp://{login}{host}:{self.port}{path}"

    def claim(self, path: str) -> int:
        """Reserve ``path`` for one sink; its mount is made by ``mount`` (at the first frame)."""
        with self._lock:
            if self._closed:
                raise SinkError(f"rtsp-serve {self.host}:{self.port}: server already stopped")
            if path in self._paths:
                raise SinkError(f"rtsp-serve {self.host}:{self.port}{path}: this path is already served; "
                                "give each output its own path, e.g. /{camera}")
            self._next_id += 1
            self._paths[path] = self._next_id
            self._users += 1
            return self._next_id

    def mount(self, mount_id: int, path: str, width: int, height: int, fps: float,
              encoder: EncoderConfig) -> None:
        preset = encoder.preset if encoder.preset in _X264_PRESETS else "veryfast"
        keyint = max(1, round(encoder.keyframe_s * fps))
        with self._lock:  # until it is served: a client may connect as soon as this returns
            self._send(f"MOUNT {mount_id} {path} {width} {height} {fps:.3f} {preset} {encoder.crf} {keyint}\n"
                       .encode(), b"", path)
            try:
                line = self._lines.get(timeout=_START_TIMEOUT_S)
            except queue.Empty:
                line = f"ERROR no answer within {_START_TIMEOUT_S:.0f} s"
        if line != f"MOUNTED {mount_id}":
            reason = line.removeprefix("ERROR ").strip() or " / ".join(self._stderr_tail) or "exited"
            raise SinkError(f"rtsp-serve {self.host}:{self.port}{path}: cannot serve this path ({reason})")
        shown = self.client_url(path).replace(f":{self.token}@", ":***@") if self.token else self.client_url(path)
        if self.host in ("0.0.0.0", "::", ""):  # every interface: clients use this machine's address
            shown = shown.replace("@127.0.0.1:", "@<this-host>:").replace("//127.0.0.1:", "//<this-host>:")
        log.info("serving RTSP on %s (%dx%d)", shown, width, height)

    def frame(self, mount_id: int, image: np.ndarray, path: str) -> None:
        with self._lock:
            self._send(f"FRAME {mount_id}\n".encode(), np.ascontiguousarray(image).data, path)

    def _send(self, line: bytes, payload: Any, path: str) -> None:
        """One command (under ``_lock``: cameras' output threads share the pipe)."""
        try:
            self._proc.stdin.write(line)  # type: ignore[union-attr]
            if len(payload):
                self._proc.stdin.write(payload)  # type: ignore[union-attr]
            self._proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError, OSError) as exc:
            tail = " / ".join(self._stderr_tail) or f"exit code {self._proc.poll()}"
            raise SinkError(f"rtsp-serve {self.host}:{self.port}{path}: server process died ({tail}); "
                            "run with --debug for GStreamer's log") from exc

    def release(self, mount_id: int | None, path: str) -> None:
        """One sink is done: its clients get end of stream; the last one stops the server."""
        with self._lock:
            if mount_id is not None and not self._closed:
                try:
                    self._send(f"END {mount_id}\n".encode(), b"", path)
                except SinkError:
                    pass  # the server is gone already: nothing left to end
            self._paths.pop(path, None)
            self._users -= 1
            last = self._users <= 0 and not self._closed
            self._closed = self._closed or last
        if last:
            _stop(self._proc)

    def close(self) -> None:
        """Stop the server for every mount (clients see end of stream); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _stop(self._proc)


class RtspServeSink:
    """One mount (``url``'s path) of an ``RtspServer``: the given ``server`` (shared by a site's
    cameras on one port), or one of its own. ``client_url`` is what to give ffplay/VLC/OpenCV."""

    def __init__(self, url: str, fps: float = 25.0, width: int | None = None, height: int | None = None, *,
                 token: str | None = None, user: str = "streamer", side_by_side: bool = False,
                 encoder: EncoderConfig | None = None, server: RtspServer | None = None) -> None:
        host, port, self.path = parse_url(url)
        self.server = server if server is not None else RtspServer(host, port, token=token, user=user)
        self.fps = fps if fps and fps > 0 else 25.0
        self.size: tuple[int, int] | None = None
        self.side_by_side = side_by_side
        self.encoder = encoder or EncoderConfig()
        self._id = self.server.claim(self.path)
        self._mounted = False
        self._closed = False
        if width and height:
            self._mount(width, height)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def token(self) -> str | None:
        return self.server.token

    @property
    def client_url(self) -> str:
        return self.server.client_url(self.path)

    def _mount(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise SinkError(f"rtsp-serve: stream size {width}x{height} must be even (H.264 4:2:0)")
        self.server.mount(self._id, self.path, width, height, self.fps, self.encoder)
        self.size = (width, height)
        self._mounted = True

    def write(self, frame: Frame) -> None:
        if self._closed:
            return
        image = compose(frame, self.side_by_side)
        if self.size is None:
            self._mount(image.shape[1], image.shape[0])
        width, height = self.size  # type: ignore[misc]
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        self.server.frame(self._id, image, self.path)

    def close(self) -> None:
        """End this mount's stream (clients see end of stream); the server's last one stops it.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.server.release(self._id if self._mounted else None, self.path)

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
    """``open_sink``'s entry: size comes from the first frame; ``options`` may carry token/user/width/
    height, and ``server``: an ``RtspServer`` on the spec's host:port to add this mount to."""
    return RtspServeSink(spec, fps or 25.0, options.pop("width", None), options.pop("height", None),
                         encoder=encoder, side_by_side=side_by_side, **options)
