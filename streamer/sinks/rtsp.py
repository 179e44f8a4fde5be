"""Push H.264 to an RTSP server (``ANNOUNCE``/``RECORD`` over TCP), e.g. mediamtx.

Serving RTSP ourselves is ``rtsp-serve://`` (another sink). A live output never stops the run:
if the server is not there at start or goes away later, frames are dropped (counted in ``stats``
for the frame's camera: run summary, /metrics) and the connection is retried with capped
backoff while the other sinks (a recording) go on; reconnects after a loss are counted in
``streamer_sink_reconnects_total``. FFmpeg connects on the first packet, not at open, so the
output counts as up once a packet went out. Only a URL that cannot be right is an error; an
output that never got a frame out is told by ``delivery()`` at the end (the CLI fails the run).

The sink has a sender thread of its own that connects, encodes and muxes: ``write`` only hands
the frame over (latest wins: a few frames wait, beyond that the oldest is dropped and counted),
so a slow or silent server never holds up the camera's thread and its other sinks.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import av

from streamer.config import EncoderConfig, ReconnectConfig, stream_target
from streamer.errors import ConfigError, SinkError
from streamer.frame import Frame
from streamer.sinks.base import Delivery
from streamer.sinks.encode import VideoEncoder, compose
from streamer.sources.live import Backoff, redact
from streamer.stats import RunStats

log = logging.getLogger(__name__)
TIME_BASE = Fraction(1, 90000)
QUEUE_FRAMES = 4  # frames waiting for the sender: enough to ride out a connect (~0.1 s)
CLOSE_GRACE_S = 2.0  # close() waits for the sender up to timeout_s plus this


def check_url(url: str) -> None:
    """Refuse what no server could take (retrying would only hide the typo)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname or port == -1 or parts.path in ("", "/"):
        raise ConfigError(f"sink {redact(url)!r}: expected rtsp://HOST[:PORT]/PATH, "
                          "e.g. rtsp://127.0.0.1:8554/clean")


class RtspSink:
    def __init__(self, url: str, *, encoder: EncoderConfig | None = None, side_by_side: bool = False,
                 fps: float = 0.0, reconnect: ReconnectConfig | None = None,
                 timeout_s: float = 5.0, stats: RunStats | None = None) -> None:
        check_url(url)
        self.url = url
        self.encoder_cfg = encoder or EncoderConfig()
        self.side_by_side = side_by_side
        self.fps = fps
        self.timeout_s = timeout_s
        self.stats = stats
        self.backoff = Backoff(reconnect or ReconnectConfig(max_attempts=0))
        self.offered = 0  # frames handed to write()
        self.frames = 0  # of those, sent to the server
        self.dropped = 0
        self.last_error = ""  # why the last connect or send failed
        self.reconnects = 0  # connections made again after a loss
        self.ever_up = False
        self._connected = False  # a packet went out on this connection
        self._container: Any = None
        self._video: VideoEncoder | None = None
        self._retry_at = 0.0
        self._t0: float | None = None
        self._lock = threading.Condition()  # the queue, counters, _closing; wakes the sender
        self._pending: deque[Frame] = deque()
        self._closing = False
        self._sender: threading.Thread | None = None  # started by the first frame
        self._asking: socket.socket | None = None  # our OPTIONS connection, for close() to break
        self._failed: SinkError | None = None  # the sender met an error retrying cannot mend

    def write(self, frame: Frame) -> None:
        """Hand the frame to the sender; never waits for the network."""
        with self._lock:
            if self._failed is not None:
                raise self._failed  # the camera fails, as when the push ran on its thread
            self.offered += 1
            if self._closing or time.monotonic() < self._retry_at:
                self._drop(frame)
                return
            if len(self._pending) >= QUEUE_FRAMES:
                self._drop(self._pending.popleft())
            self._pending.append(frame)
            if self._sender is None:
                self._sender = threading.Thread(target=self._run, name=f"rtsp-push {redact(self.url)}",
                                                daemon=True)
                self._sender.start()
            self._lock.notify()

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._closing:
                        self._lock.wait()
                    if not self._pending:
                        return
                    frame = self._pending.popleft()
                    if self._closing and not self._connected:  # nowhere to send what is left
                        for f in (frame, *self._pending):
                            self._drop(f)
                        self._pending.clear()
                        return
                try:
                    self._send(frame)
                except Exception as exc:  # noqa: BLE001  not the network: a setting or a bug
                    self._fail(frame, exc)
                    return
        finally:
            self._finish()

    def _fail(self, frame: Frame, exc: Exception) -> None:
        """Keep the error for the next write() or close() to raise (a thread that died silently
        left the run going with the output dead), and count what will not go out."""
        log.error("%s: RTSP output failed (%s: %s)", redact(self.url), type(exc).__name__, exc)
        with self._lock:
            self._failed = SinkError(f"{redact(self.url)}: RTSP output failed ({exc})")
            self.last_error = str(exc) or type(exc).__name__
            for f in (frame, *self._pending):
                self._drop(f)
            self._pending.clear()

    def _send(self, frame: Frame) -> None:
        image = compose(frame, self.side_by_side)
        if self._t0 is None:
            self._t0 = frame.pts_s
        started_s = time.monotonic()
        try:
            if self._video is None:
                self._open(image.shape[1], image.shape[0])
            connecting = not self._connected
            packets = self._video.encode(image, frame.pts_s - self._t0)  # type: ignore[union-attr]
        except (av.FFmpegError, OSError) as exc:
            error = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            if isinstance(exc, av.InvalidDataError) and time.monotonic() - started_s >= 0.9 * self.timeout_s:
                # a server that takes the connection and then says nothing: FFmpeg gives up
                # with a misleading "Invalid data found when processing input"
                error = f"no answer within {self.timeout_s:g} s"
            self._lost(frame, error)
            return
        if packets or not connecting:  # a frame held back before any connection has gone nowhere yet
            with self._lock:
                self.frames += 1
        if packets and connecting:  # FFmpeg connects on the first packet, not at open
            self._on_connected(frame.source)

    def _open(self, width: int, height: int) -> None:
        self._ask_server()
        us = str(int(self.timeout_s * 1e6))
        self._container = av.open(self.url, "w", format="rtsp",
                                  options={"rtsp_transport": "tcp", "timeout": us},
                                  timeout=(self.timeout_s, self.timeout_s))
        self._video = VideoEncoder(self._container, width, height, cfg=self.encoder_cfg,
                                   fps=self.fps or 25.0, time_base=TIME_BASE, low_latency=True)

    def _ask_server(self) -> None:
        """Send OPTIONS ourselves and wait for an RTSP answer before FFmpeg connects. FFmpeg's
        connect runs inside PyAV's ``avformat_write_header`` with the GIL held, so a server that
        takes the connection and then says nothing would freeze every thread of the process (the
        recording too) for ``timeout_s`` on each retry; this wait releases the GIL, and close()
        can break it. Raises OSError (the same path as FFmpeg's errors)."""
        parts = urlsplit(self.url)
        secure = parts.scheme == "rtsps"
        port = stream_target(self.url)[2]  # type: ignore[index]  the default ports live there
        host = parts.hostname or ""  # as written: FFmpeg resolves localhost itself
        sock = self._connect(host, port)
        try:
            deadline_s = time.monotonic() + self.timeout_s
            if secure:  # FFmpeg does not verify the certificate by default either
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                with self._lock:  # no I/O under the lock: write() and close() take it
                    sock = self._asking = context.wrap_socket(sock, server_hostname=host,
                                                              do_handshake_on_connect=False)
                sock.do_handshake()
            target = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()  # no password
            sock.sendall(f"OPTIONS {target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: streamer\r\n\r\n".encode())
            answer = b""
            while b"\r\n" not in answer:
                sock.settimeout(max(deadline_s - time.monotonic(), 0.01))
                chunk = sock.recv(1024)
                if not chunk:
                    raise ConnectionResetError("closed by the server without an answer")
                answer += chunk
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from exc
        finally:
            with self._lock:
                self._asking = None
                sock.close()
        if not answer.startswith(b"RTSP/"):
            raise ConnectionError(f"not an RTSP server, it answered {answer[:24]!r}")

    def _connect(self, host: str, port: int) -> socket.socket:
        """A TCP connection to the first of ``host``'s addresses that takes it, as FFmpeg and
        ``socket.create_connection`` try them (localhost may be ::1 first, the server on IPv4)."""
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            with self._lock:
                if self._closing:
                    sock.close()
                    raise ConnectionAbortedError("the output is closing")
                self._asking = sock
            try:
                sock.settimeout(self.timeout_s)
                sock.connect(address)
                return sock
            except OSError as exc:
                error = exc
                with self._lock:
                    self._asking = None
                sock.close()
        raise error

    def _on_connected(self, camera: str) -> None:
        self._connected = True
        if self.backoff.attempt:  # after failed attempts: say so, once
            log.info("%s: RTSP output %s", redact(self.url), "back" if self.ever_up else "reached")
        if self.ever_up:
            self.reconnects += 1
            if self.stats is not None:
                self.stats.on_sink_reconnect(camera)
        self.ever_up = True
        self.backoff.reset()

    def _lost(self, frame: Frame, error: str) -> None:
        """Drop the connection, this frame and those waiting (stale by the retry); retry later."""
        self._drop_connection()
        with self._lock:
            stale = [frame, *self._pending]
            self._pending.clear()
            for f in stale:
                self._drop(f)
            if self._closing:
                return  # close() broke the connect: nothing to retry, and not the server's error
            self.last_error = error
            delay = self.backoff.next_delay_s() or self.backoff.cfg.max_s
            self._retry_at = time.monotonic() + delay
        state = "lost" if self.ever_up else "not reached yet"
        log.warning("%s: RTSP output %s (%s); frames are dropped, retry in %.1f s, attempt %d",
                    redact(self.url), state, error, delay, self.backoff.attempt)

    def _drop(self, frame: Frame) -> None:
        with self._lock:
            self.dropped += 1
        if self.stats is not None:
            self.stats.on_drop(frame.source)

    def _drop_connection(self) -> None:
        container, self._container, self._video = self._container, None, None
        self._connected = False
        if container is not None:
            try:
                container.close()
            except (av.FFmpegError, OSError):
                pass  # the server is already gone; nothing to flush to

    def _finish(self) -> None:
        """On the sender, as it ends: flush the encoder to a connected server, close."""
        if self._video is not None and self._connected:
            try:
                self._video.flush()
            except (av.FFmpegError, OSError):
                pass
        self._drop_connection()

    def delivery(self) -> Delivery:
        """Frames handed in and sent: the run's verdict on this output (``Delivery``)."""
        with self._lock:
            return Delivery(f"RTSP output {redact(self.url)}", self.offered, self.frames, self.last_error)

    def close(self) -> None:
        """Stop the sender: frames still waiting go out if connected; a connect in progress is
        broken off. Waits at most ``timeout_s`` + CLOSE_GRACE_S (FFmpeg's own I/O timeout)."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            sender, asking = self._sender, self._asking
            if asking is not None:
                try:
                    asking.shutdown(socket.SHUT_RDWR)  # wakes the sender's connect/recv at once
                except OSError:
                    pass
        if sender is not None and sender is not threading.current_thread():
            sender.join(self.timeout_s + CLOSE_GRACE_S)
            if sender.is_alive():
                log.warning("%s: RTSP output did not close within %.0f s; left to finish on its own",
                            redact(self.url), self.timeout_s + CLOSE_GRACE_S)
        if self._failed is not None:
            raise self._failed
