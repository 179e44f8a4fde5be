"""What does INT8 cost `fast`, by calibration data and by the parts kept fp32? (model-log, session 20)

Quantizes the shipped `fast` with ONNX Runtime's QDQ recipe (streamer.export.ort_int8) from either
`calib/` (the shipped calibration set: frames of the two sample videos and their corrupted twins)
or training photos (centre 416×640 windows and corrupted twins, never validation photos), keeping
the ONNX nodes under ``--fp32`` prefixes in fp32, and prints the gain fp32 vs INT8 on seeded dirt
(seed 1234, per-frame RNG as the export's report) for: the calibration frames with dirt sized for
their own 640-px width and for a 1280-px frame, the validation centre crops, the validation whole
photos, and streaks. Session 20 found the shipped recipe costs 0.3–0.6 dB off the crops it was
measured on; this is the script that shows it and the candidates that fix it.

    python scripts/int8_probe.py                                   # calib/, all INT8 (the shipped recipe)
    python scripts/int8_probe.py --calib photos --fp32 /stem/ /blend/
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from streamer.evaluate.runner import EvalRequest, centre_crop, select_photos
from streamer.export.calibration import CalibSet, hash_frames, read_calib
from streamer.export.onnx_export import export_onnx, onnx_outputs, psnr_db
from streamer.export.ort_int8 import Int8Options, quantize_int8
from streamer.models import get_spec
from streamer.models.weights import build_with_weights
from streamer.synth import corrupt
from streamer.train.data import list_images, read_rgb, split

PHOTOS = Path("../shared/data/images")
KINDS = ("dirt", "raindrop", "streaks", "dirt")  # the corrupted twins of the photo calibration set


def _u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def photo_calib(n: int = 16, seed: int = 0) -> CalibSet:
    """``n`` training photos (416×640 centre windows) and a corrupted twin of each."""
    train, _ = split(list_images(PHOTOS))
    frames, twins, names = [], [], []
    for i in np.random.default_rng(seed).permutation(len(train)):
        img = read_rgb(train[i])
        h, w = img.shape[:2]
        if h < 416 or w < 640:
            continue
        img = np.ascontiguousarray(img[(h - 416) // 2:(h - 416) // 2 + 416, (w - 640) // 2:(w - 640) // 2 + 640])
        k = len(names)
        dirty, _ = corrupt(img, KINDS[k % len(KINDS)], np.random.default_rng([7, k]), frame_px=1280)
        frames += [_u8(img), _u8(dirty)]
        twins += [False, True]
        names.append(train[i].name)
        if len(names) == n:
            break
    return CalibSet(frames=frames, sha256=hash_frames(frames), source=str(PHOTOS),
                    names=[x for x in names for _ in (0, 1)], corrupted=twins)


def cost(fp32: Path, int8: Path, frames: list[np.ndarray], kind: str, frame_px: float | None) -> tuple[float, float]:
    dirty, targets = [], []
    for i, f in enumerate(frames):
        x = f.astype(np.float32) / 255
        d, _ = corrupt(x, kind, np.random.default_rng([1234, i]), frame_px=frame_px)
        dirty.append((np.round(np.clip(d, 0, 1) * 255) / 255).transpose(2, 0, 1)[None].astype(np.float32))
        targets.append(x.transpose(2, 0, 1)[None])
    base = [psnr_db(d, t) for d, t in zip(dirty, targets)]
    gains = [np.mean([psnr_db(o, t) - b for o, t, b in zip(onnx_outputs(m, dirty, 2), targets, base)])
             for m in (fp32, int8)]
    return float(gains[0]), float(gains[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", choices=("calib", "photos"), default="calib")
    ap.add_argument("--fp32", nargs="*", default=[], help="ONNX node-name prefixes kept fp32, e.g. /stem/ /blend/")
    args = ap.parse_args()
    spec = get_spec("fast")
    net = build_with_weights(spec, spec.weights_path).eval()
    calib = read_calib("calib", multiple=16)
    photos = select_photos(EvalRequest(clean=PHOTOS, corruption="dirt"))
    crops = [_u8(centre_crop(read_rgb(p), 256)) for p in photos]
    whole = []
    for p in photos:
        img = read_rgb(p)
        whole.append(_u8(img[: img.shape[0] // 16 * 16, : img.shape[1] // 16 * 16]))
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fast.onnx", Path(tmp) / "fast-int8.onnx"
        export_onnx(net, fp32, shape=(1, 64, 64), dynamic=True)
        quantize_int8(fp32, int8, calib if args.calib == "calib" else photo_calib(),
                      Int8Options(fp32_prefixes=tuple(args.fp32)))
        print(f"calibration: {args.calib}; fp32 parts: {' '.join(args.fp32) or 'none'}\n\n"
              "| frames | corruption | gain fp32 | gain INT8 | INT8 cost |\n|---|---|---|---|---|")
        rows = (("calib/ clean frames (640×352)", calib.clean(), "dirt", None),
                ("calib/ clean frames, dirt sized for 1280 px", calib.clean(), "dirt", 1280),
                ("validation centre crops (256)", crops, "dirt", 1280),
                ("validation whole photos", whole, "dirt", 1280),
                ("calib/ clean frames", calib.clean(), "streaks", 1280))
        for name, frames, kind, frame_px in rows:
            g32, g8 = cost(fp32, int8, frames, kind, frame_px)
            print(f"| {name} | {kind} | {g32:+.2f} | {g8:+.2f} | {g32 - g8:.2f} |")


if __name__ == "__main__":
    main()
