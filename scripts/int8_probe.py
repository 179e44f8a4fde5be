"""What does INT8 cost `fast`, by calibration data and by the parts kept fp32? (model-log, session 20)

Quantizes the shipped `fast` with ONNX Runtime's QDQ recipe (streamer.export.ort_int8) from either
`calib/` (the shipped set: frames of two sample clips, 5 photos and their corrupted twins)
or training photos (`streamer calib make`'s picks and twins, never validation photos), keeping
the ONNX nodes under ``--fp32`` prefixes in fp32, and prints the gain fp32 vs INT8 on seeded dirt
(the export's own report, `int8_report`, seed 1234) for: the calibration frames with dirt sized for
their own 640-px width and for a 1280-px frame, the validation centre crops, the validation whole
photos, and streaks. Session 20 found the shipped recipe costs 0.3–0.6 dB off the crops it was
measured on; this is the script that shows it and the candidates that fix it.

    python scripts/int8_probe.py                                   # calib/, all INT8 (the shipped recipe)
    python scripts/int8_probe.py --calib photos --fp32 /stem/ /blend/
    python scripts/int8_probe.py --model fast-drops --fp32 /drops/ /blend/   # its shipped recipe
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from streamer.evaluate.runner import EvalRequest, centre_crop, select_photos
from streamer.export.calibration import crop_multiple, make_calib, read_calib
from streamer.export.onnx_export import export_onnx
from streamer.export.ort_int8 import Int8Options, int8_report, quantize_int8
from streamer.models import get_spec
from streamer.models.weights import build_with_weights
from streamer.synth.pairs import to_uint8
from streamer.train.data import list_images, read_rgb, split

PHOTOS = Path("../shared/data/images")


def photo_calib(out: Path, frames: int = 32):
    """What `streamer calib make TRAINING_PHOTOS -o out --frames 32` writes (varied picks, 640×360,
    seeded twins), read back: training photos only, so the validation rows stay held out."""
    train, _ = split(list_images(PHOTOS))
    make_calib(train, out, frames=frames)
    return read_calib(out, multiple=16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fast", help="a registered model (fast, fast-drops)")
    ap.add_argument("--calib", choices=("calib", "photos"), default="calib")
    ap.add_argument("--fp32", nargs="*", default=[], help="ONNX nodes kept fp32: a module subtree ending in / (/stem/) or one node (/Add)")
    args = ap.parse_args()
    spec = get_spec(args.model)
    net = build_with_weights(spec, spec.weights_path).eval()
    calib = read_calib("calib", multiple=16)
    photos = select_photos(EvalRequest(clean=PHOTOS, corruption="dirt"))
    crops = [to_uint8(centre_crop(read_rgb(p), 256)) for p in photos]
    whole = [crop_multiple(to_uint8(read_rgb(p)), 16) for p in photos]
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fast.onnx", Path(tmp) / "fast-int8.onnx"
        export_onnx(net, fp32, shape=(1, 64, 64), dynamic=True)
        quantize_int8(fp32, int8, calib if args.calib == "calib" else photo_calib(Path(tmp) / "calib"),
                      Int8Options(fp32_prefixes=tuple(args.fp32)))
        print(f"calibration: {args.calib}; fp32 parts: {' '.join(args.fp32) or 'none'}\n\n"
              "| frames | corruption | gain fp32 | gain INT8 | INT8 cost |\n|---|---|---|---|---|")
        rows = (("calib/ clean frames (640×352)", calib.clean(), "dirt", None, 1234),
                ("calib/ clean frames, dirt sized for 1280 px", calib.clean(), "dirt", 1280, 1234),
                ("validation centre crops (256)", crops, "dirt", 1280, 1234),
                # the whole-photo row swings with the dirt drawn (session 21): three seeds
                *((f"validation whole photos, seed {s}", whole, "dirt", 1280, s) for s in (1234, 0, 1)),
                ("calib/ clean frames", calib.clean(), "streaks", 1280, 1234),
                ("validation centre crops (256)", crops, "raindrop", 1280, 1234),
                ("validation whole photos", whole, "raindrop", 1280, 1234))
        for name, frames, kind, frame_px, seed in rows:
            r = int8_report(fp32, int8, frames, corruption=kind, frame_px=frame_px, seed=seed)
            print(f"| {name} | {kind} | {r.gain_fp32_db:+.2f} | {r.gain_int8_db:+.2f} | {r.cost_db:.2f} |", flush=True)


if __name__ == "__main__":
    main()
