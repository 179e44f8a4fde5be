"""Start, kill and restart a real RTSP camera (gst-rtsp-server) on 127.0.0.1 for tests.

The server needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0 (scripts/system-deps.sh),
which live with the system python, so it runs as a subprocess of ``/usr/bin/python3``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("rtsp_server_gst.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def gst_rtsp_missing() -> str | None:
    """Why the test server cannot run here, or None when it can."""
    python = shutil.which(SYSTEM_PYTHON) or shutil.which("python3")
    if not python:
        return "no system python3 for GStreamer"
    probe = ("import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer, Gst; Gst.init(None); "
             "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('videotestsrc')")
    done = subprocess.run([python, "-c", probe], capture_output=True, timeout=60)
    if done.returncode:
        return ("gst-rtsp-server with x264enc not available to the system python "
                "(apt: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly)")
    return None


class RtspTestServer:
    """``start()`` picks a free port the first time and keeps it across ``stop()``/``start()``."""

    def __init__(self, path: str = "/cam", width: int = 160, height: int = 120, fps: int = 15,
                 record: str | Path | None = None) -> None:
        self.path, self.width, self.height, self.fps = path, width, height, fps
        self.record = record  # set: the server takes a pushed stream and writes it here (.h264)
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, timeout_s: float = 30.0) -> str:
        python = shutil.which(SYSTEM_PYTHON) or sys.executable
        cmd = [python, str(SCRIPT), "--port", str(self.port), "--path", self.path,
               "--width", str(self.width), "--height", str(self.height), "--fps", str(self.fps)]
        if self.record:
            cmd += ["--record", str(self.record)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._first_line(timeout_s)
        if not line.startswith("READY"):
            err = self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"RTSP test server did not start: {line!r} {err[-500:]}")
        self.port = int(line.split()[1])
        return self.url

    def _first_line(self, timeout_s: float) -> str:
        import threading

        out: list[str] = []
        proc = self.proc
        reader = threading.Thread(target=lambda: out.append(proc.stdout.readline() if proc and proc.stdout else ""),
                                  daemon=True)
        reader.start()
        reader.join(timeout_s)
        return out[0].strip() if out else ""

    def stop(self) -> None:
        """Kill the server the hard way (a camera losing power)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()
            self.proc = None

    def restart(self) -> str:
        self.stop()
        return self.start()

    def __enter__(self) -> "RtspTestServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
