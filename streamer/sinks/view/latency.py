"""Capture->display latency of the web view on loopback, for ``streamer bench``.

A real ``ViewSink`` on 127.0.0.1 gets frames stamped with ``captured_s`` and their index drawn
as a black/white bar code; a real client reads them back as the page does (its WebSocket,
``transport="ws"``, the default) or as other tools do (the MJPEG stream, ``"mjpeg"``), decodes
each JPEG, reads the index back and takes ``now - captured_s``. That is everything but the
browser's paint: JPEG encode, the socket, the client's JPEG decode. Frames the client skips
(latest wins) are counted.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import statistics
import struct
import threading
import time
from collections.abc import Callable, Iterator

import aiohttp
import cv2
import numpy as np

from streamer.frame import Frame
from streamer.sinks.view.sink import ViewSink

TRANSPORTS = {"ws": "websocket loopback", "mjpeg": "mjpeg/http loopback"}

_BITS = 16
_CELL = 16  # px per bar-code cell: big enough to survive JPEG at any sane quality


def iter_mjpeg(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """JPEG payloads of a multipart/x-mixed-replace response (parts need Content-Length)."""
    while True:
        line = response.readline()
        if not line:
            return
        if not line.lower().startswith(b"content-length:"):
            continue
        length = int(line.split(b":", 1)[1])
        while response.readline() not in (b"\r\n", b"\n", b""):
            pass
        data = response.read(length)
        if len(data) < length:
            return
        yield data


def split_ws_frame(data: bytes) -> tuple[dict, bytes]:
    """A binary message of the page's WebSocket: (its header: camera, v, seq; the JPEG)."""
    (length,) = struct.unpack_from(">H", data)
    return json.loads(data[2:2 + length]), data[2 + length:]


def read_ws(port: int, camera: str, on_jpeg: Callable[[bytes], None], stop: threading.Event) -> None:
    """Read ``camera``'s clean stream over /ws on 127.0.0.1, as the page does, until ``stop`` or
    the server ends; blocking (a thread of its own)."""

    async def read() -> None:
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0) as ws:
            await ws.send_str(json.dumps({"want": [{"camera": camera, "v": "clean"}]}))
            while not stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if msg.type == aiohttp.WSMsgType.BINARY:
                    on_jpeg(split_ws_frame(msg.data)[1])
                elif msg.type != aiohttp.WSMsgType.TEXT:
                    return  # closed

    try:
        asyncio.run(read())
    except (OSError, aiohttp.ClientError, ValueError):
        pass  # the sink closed: measurement over


def draw_index(image: np.ndarray, index: int) -> None:
    """Write ``index`` (16 bits) as white/black cells along the top-left edge, in place."""
    for bit in range(_BITS):
        value = 255 if (index >> bit) & 1 else 0
        image[:_CELL, bit * _CELL:(bit + 1) * _CELL] = value


def read_index(image: np.ndarray) -> int:
    """Inverse of ``draw_index`` on a decoded (lossy) picture: sample each cell's centre."""
    row = image[_CELL // 2, _CELL // 2::_CELL][:_BITS]
    luma = row.mean(axis=-1) if row.ndim == 2 else row
    return sum(1 << bit for bit, v in enumerate(luma) if v > 127)


def _test_pattern(width: int, height: int, index: int) -> np.ndarray:
    """A moving gradient (so frames differ like video) with the index bar code on top."""
    x = (np.arange(width, dtype=np.int32)[None, :] + 4 * index) % 256
    y = np.arange(height, dtype=np.int32)[:, None] % 256
    image = np.stack(np.broadcast_arrays(x, y, (x + y) // 2), axis=-1).astype(np.uint8)
    draw_index(image, index)
    return image


def measure_view_latency(frames: int = 150, width: int = 1280, height: int = 720, fps: float = 30.0,
                         jpeg_quality: int = 80, transport: str = "ws") -> dict[str, float | int | str]:
    """Push ``frames`` at ``fps`` into a loopback view sink and read them back over ``transport``
    (``ws``: the page's WebSocket; ``mjpeg``: the /stream endpoint).

    Returns latency percentiles in ms plus how many frames the viewer got (the rest were
    skipped because a newer frame was ready: latest wins, by design).
    """
    if width < _BITS * _CELL or height < _CELL:
        raise ValueError(f"latency bench: frames must be at least {_BITS * _CELL}x{_CELL}")
    if transport not in TRANSPORTS:
        raise ValueError(f"latency bench: transport must be one of {', '.join(TRANSPORTS)}")
    pictures = [_test_pattern(width, height, i) for i in range(min(frames, 64))]
    sent_at: dict[int, float] = {}
    latencies_ms: list[float] = []
    with ViewSink(port=0, jpeg_quality=jpeg_quality, title="latency bench") as sink:
        first = pictures[0]
        sink.write(Frame(first, 0.0, 0, "bench", captured_s=time.monotonic()))

        def on_jpeg(data: bytes) -> None:
            now = time.monotonic()
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            index = read_index(image)
            if index in sent_at and index > 0:
                latencies_ms.append(1000.0 * (now - sent_at[index]))

        stop = threading.Event()
        if transport == "ws":
            conn = None
            reader = threading.Thread(target=read_ws, args=(sink.port, "bench", on_jpeg, stop),
                                      name="latency-reader", daemon=True)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
            conn.request("GET", "/stream?camera=bench")
            response = conn.getresponse()

            def read() -> None:
                try:
                    for data in iter_mjpeg(response):
                        on_jpeg(data)
                except (OSError, http.client.HTTPException, ValueError):
                    pass  # the sink closed the stream: measurement over

            reader = threading.Thread(target=read, name="latency-reader", daemon=True)
        reader.start()
        time.sleep(0.3)  # let the stream settle before the first stamped frame
        period_s = 1.0 / fps
        start = time.monotonic()
        for i in range(1, frames + 1):
            image = pictures[i % len(pictures)].copy()
            draw_index(image, i)
            now = time.monotonic()
            sent_at[i] = now
            sink.write(Frame(image, i * period_s, i, "bench", captured_s=now))
            time.sleep(max(0.0, start + i * period_s - time.monotonic()))
        time.sleep(0.5)
        stop.set()
        if conn is not None:
            conn.close()
    reader.join(5.0)
    if not latencies_ms:
        return {"transport": TRANSPORTS[transport], "frames_sent": frames, "frames_received": 0}
    ordered = sorted(latencies_ms)
    return {
        "transport": TRANSPORTS[transport],
        "size": f"{width}x{height}",
        "fps": fps,
        "jpeg_quality": jpeg_quality,
        "frames_sent": frames,
        "frames_received": len(ordered),
        "latency_ms_median": round(statistics.median(ordered), 2),
        "latency_ms_p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "latency_ms_mean": round(statistics.fmean(ordered), 2),
        "latency_ms_max": round(ordered[-1], 2),
    }
