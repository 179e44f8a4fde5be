"""``streamer.Cleaner``: one frame in, one cleaned frame out, for apps with their own capture loop.

A dashcam or VMS integrator already has frames (from GStreamer, a vendor SDK, OpenCV); they need
the network and its pre/post-processing, not our sources and sinks::

    import streamer

    with streamer.Cleaner("fast", backend="openvino", int8=True) as clean:
        out = clean(frame_bgr, bgr=True)  # H×W×3 uint8 in, same shape and order out

Same backends, weights, INT8 cache and tiling as ``streamer run``; no threads of its own. Calls
from several threads take turns (a lock); for cameras in parallel, one Cleaner per thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamer.errors import ConfigError
from streamer.frame import Frame

if TYPE_CHECKING:
    from streamer.preprocess.frames import FrameRestorer

# Frames above this run in tiles of AUTO_TILE, so memory stays bounded (`fast` in torch peaks at
# ~1.1 GB for a 4K frame). 4K frames run whole: a tile sees only its own part of the frame, and
# `fast`'s frame-wide context (the dirt's colour) would then differ from tile to tile.
AUTO_TILE_PIXELS = 4096 * 2304
AUTO_TILE = 2048


class Cleaner:
    """Cleans single uint8 frames with ``model`` on ``backend``; see the module docstring.

    ``timings`` holds the last call's milliseconds per stage (preprocess, network, postprocess).
    """

    def __init__(self, model: str | Path = "fast", backend: str = "torch", device: str | None = None, *,
                 arch: str | None = None, threads: int = 0, int8: bool | str = False, fp16: bool = True,
                 calib: str | Path | None = None, tile: int = 0, overlap: int | None = None) -> None:
        from streamer.backends import open_backend
        from streamer.preprocess.frames import FrameRestorer

        if not isinstance(model, (str, Path)):
            raise ConfigError(f"model {model!r}: give a registered name (`streamer models`) or the path of "
                              "a .safetensors, .onnx or .engine file")
        model = str(model)  # a Path for a weights or ONNX file is as good as its name
        if calib is not None and not int8:
            raise ConfigError("calib= calibrates an INT8 model: add int8=True, or drop calib")
        if overlap is None:  # 32 px, or half a smaller tile
            overlap = min(32, tile // 2) if tile > 0 else 32
        elif tile > 0 and not 0 <= overlap <= tile // 2:  # before the model loads; the tiler would clamp it
            raise ConfigError(f"overlap={overlap}: use 0 to tile // 2 ({tile // 2}) for tile={tile}")
        self.backend = open_backend(model, backend, device, arch=arch, threads=threads, fp16=fp16,
                                    int8=int8, calib=calib)
        self._restorer = FrameRestorer(self.backend, tile=tile, overlap=overlap)
        self._tiled: FrameRestorer | None = None  # made on the first frame above AUTO_TILE_PIXELS
        self._overlap = overlap
        self._count = 0
        self.timings: dict[str, float] = {}
        # one call at a time: OpenVINO's infer request is not reentrant ("Infer Request is busy"),
        # and close() must not pull the backend from under a call in another thread
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray, *, bgr: bool = False) -> np.ndarray:
        """Clean one frame: ``image`` is H×W×3 uint8 (0-255), RGB, or OpenCV's BGR with ``bgr=True``.

        Returns a new C-contiguous H×W×3 uint8 array, the same shape and channel order as ``image``
        (which is not changed). Any size from 1×1; above ``AUTO_TILE_PIXELS`` it runs in tiles.
        Anything else, or a call after ``close()``, raises ``ConfigError``. Calls from several
        threads take turns; for cameras in parallel, one Cleaner per thread.
        """
        with self._lock:
            return self._clean(image, bgr)

    def _clean(self, image: np.ndarray, bgr: bool) -> np.ndarray:
        if self.backend is None:
            raise ConfigError("this Cleaner is closed")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ConfigError(f"frame is {got}: Cleaner takes H×W×3 uint8 (RGB, or BGR with bgr=True)")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ConfigError(f"frame is {image.shape}: empty (no pixels to clean)")
        rgb = image[..., ::-1] if bgr else image
        restorer = self._restorer
        if restorer.tiler is None and image.shape[0] * image.shape[1] > AUTO_TILE_PIXELS:
            if self._tiled is None:
                from streamer.preprocess.frames import FrameRestorer

                # equal tiles, one per call: the point is bounded memory, not throughput
                self._tiled = FrameRestorer(self.backend, tile=AUTO_TILE, overlap=self._overlap,
                                            even_tiles=not getattr(self.backend, "input_hw", None))
            restorer = self._tiled
        timings: dict[str, float] = {}
        out = restorer(Frame(np.ascontiguousarray(rgb), 0.0, self._count),
                       timer=lambda stage, s: timings.__setitem__(stage, 1000.0 * s)).image
        self._count += 1
        self.timings = timings
        return np.ascontiguousarray(out[..., ::-1]) if bgr else out

    @property
    def restorer(self) -> "FrameRestorer":
        """The frame stage behind this Cleaner, for a ``Pipeline`` (``streamer.restore``'s videos)."""
        return self._restorer

    def close(self) -> None:
        """Free the backend; waits for a call in progress in another thread. Safe to repeat."""
        with self._lock:
            if self.backend is not None:
                self.backend.close()
                self.backend = None

    def __enter__(self) -> "Cleaner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
