"""Rebuild assets/demo.mp4: 10 s of the OpenCV street clip seen through a dirty, rainy lens.

The source has no dirt, so a fixed layer of synthetic dirt and raindrops (same seed on every
frame, as on a real lens) is drawn over it with ``streamer.synth``; the demo then shows the
model removing it. Run: ``.venv/bin/python scripts/make_demo_clip.py``.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamer.synth.dirt import DirtParams, apply_dirt
from streamer.synth.raindrop import RaindropParams, apply_raindrops

SRC = Path(__file__).resolve().parents[1] / "../shared/data/video/street_surveillance.mp4"
DST = Path(__file__).resolve().parents[1] / "assets/demo.mp4"
SECONDS = 10.0
DIRT = DirtParams(spots=(300.0, 300.0), coverage=(0.08, 0.08), opacity=(0.4, 0.4), haze=(0.1, 0.1),
                  flecks=(40.0, 40.0), defocus_px=(1.2, 1.2))
DROPS = RaindropParams(count_per_mp=(120.0, 120.0), radius_frac=(0.008, 0.02))


def dirty_lens(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float32) / 255.0
    x, _ = apply_dirt(x, np.random.default_rng(3), DIRT)
    x, _ = apply_raindrops(x, np.random.default_rng(11), DROPS)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def main() -> int:
    with av.open(str(SRC)) as src, av.open(str(DST), "w", format="mp4",
                                          options={"movflags": "+faststart"}) as dst:
        vin = src.streams.video[0]
        out = dst.add_stream("libx264", rate=vin.average_rate,
                             options={"preset": "slow", "crf": "27", "g": "20"})
        out.width, out.height, out.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        out.time_base = out.codec_context.time_base = Fraction(1, int(vin.average_rate))
        for i, frame in enumerate(src.decode(vin)):
            if frame.time >= SECONDS:
                break
            vf = av.VideoFrame.from_ndarray(dirty_lens(frame.to_ndarray(format="rgb24")), format="rgb24")
            vf.pts = i
            for packet in out.encode(vf):
                dst.mux(packet)
        for packet in out.encode(None):
            dst.mux(packet)
    print(f"{DST}: {DST.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
