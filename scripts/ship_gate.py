"""Should these `fast` weights replace the shipped ones? The ship rule, as a program.

    python scripts/ship_gate.py CANDIDATE.safetensors [...] [--against streamer/weights/fast.safetensors]
    python scripts/ship_gate.py --model fast-drops CANDIDATE.safetensors   # the opt-in drops model

Rule (docs/model-log.md, "The ship gate", fixed in session 13 before any candidate was run
through it):

1. Every validation gain is at least the shipped file's: dirt, raindrops, streaks (256-px crops),
   dirt on whole photos, dirt sized for a 1080p frame, heavy dirt. Crop rows use 4 crops per
   photo (the centre one and 3 seeded ones), so each row averages 72 windows (18 photos), not 18.
2. Clean fidelity: the mean PSNR of the worst 5 % of clean 256-px crops (4 per photo, every
   photo of the folder, validation and training, ~700 crops) is at least the shipped file's.
   (Replaces "the worst of 18 centre crops", which swung ±2 dB between checkpoints 1,000 steps
   apart, session 12.)
3. The clean mean over the same crops stays ≥ 38 dB (issue 9's floor for clean frames).

Below the verdicts, each candidate's difference from the shipped file per row with a 95 %
interval from resampling photos (paired, `streamer.evaluate.compare`): a report for reading the
verdicts, not part of the rule (session 16 added it; the rule above is unchanged). Under it, what
the noise-aware rule proposed to steering would say (no row worse with an interval clear of
zero, a dirt row better with one): also a report, not in force (session 17). Those intervals
resample photos only: seeds of one recipe (E50, session 19) spread up to 1.3 dB on the clean
tail and 0.03 on heavy dirt, where photo intervals between them already excluded zero — so the
report prints that seed spread (``streamer.evaluate.compare.SEED_SPREAD``) next to them.

`--split train` measures the gain rows on the training photos instead: not the rule, the check
that a passing candidate did not win on the validation photos by chance (the clean rows already
cover every photo). Results are cached per weights hash and split under --cache, so the shipped
file is measured once.
One torch thread: it runs beside a training run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamer.evaluate.compare import Difference

GAIN_ROWS = {  # row -> EvalRequest options (validation split, seed 0)
    "dirt": dict(corruption="dirt", crop=256, crops=4),
    "raindrop": dict(corruption="raindrop", crop=256, crops=4),
    "streaks": dict(corruption="streaks", crop=256, crops=4),
    "dirt, whole photos": dict(corruption="dirt", crop=0),
    "dirt, 1080p-sized": dict(corruption="dirt", crop=256, crops=4, frame_px=1920),
    "dirt, heavy": dict(corruption="dirt", crop=256, crops=4, heavy=True),
}
CLEAN = dict(corruption="none", crop=256, crops=4, split="all")  # only the clean-input check
CLEAN_FLOOR_DB = 38.0


def measure(weights: Path, clean: Path, cache: Path, split: str = "val", model: str = "fast") -> dict:
    """{row: gain} plus clean_tail5 / clean_mean / clean_min for one weights file, and under
    "crops" each row's per-crop scores (``file#k`` -> gain, or clean PSNR) for the intervals."""
    from streamer.evaluate.compare import crop_scores
    from streamer.evaluate.runner import EvalRequest, run_eval
    from streamer.models.weights import sha256_file

    tag = ("" if split == "val" else "_" + split) + ("" if model == "fast" else "_" + model)
    out = cache / f"{sha256_file(weights)[:16]}{tag}.json"
    if out.exists() and "crops" in (res := json.loads(out.read_text())):  # older files lack crops
        return res
    common = dict(clean=clean, models=(model,), weights={model: weights}, seed=0, baselines=False, threads=1)
    res = {"weights": str(weights), "crops": {}}
    for row, opts in GAIN_ROWS.items():
        r = run_eval(EvalRequest(**common, clean_check=False, split=split, **opts))
        res[row] = next(x["psnr_gain"] for x in r["rows"] if x["method"] == model)
        res["crops"][row] = crop_scores(r["per_image"], model)
    r = run_eval(EvalRequest(**common, **CLEAN))
    c = r["clean_rows"][0]
    res |= {"clean_tail5": c["psnr_tail5"], "clean_mean": c["psnr_mean"], "clean_min": c["psnr_min"],
            "clean_n": c["n"]}
    res["crops"]["clean"] = crop_scores(r["per_image"], model, clean=True)
    cache.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    return res


def verdict(cand: dict, shipped: dict) -> list[str]:
    """The rule's failures (empty = ship)."""
    fails = [f"{row} {cand[row]:+.3f} < shipped {shipped[row]:+.3f}" for row in GAIN_ROWS if cand[row] < shipped[row]]
    if cand["clean_tail5"] < shipped["clean_tail5"]:
        fails.append(f"clean worst-5 % {cand['clean_tail5']:.2f} < shipped {shipped['clean_tail5']:.2f} dB")
    if cand["clean_mean"] < CLEAN_FLOOR_DB:
        fails.append(f"clean mean {cand['clean_mean']:.2f} < {CLEAN_FLOOR_DB} dB")
    return fails


COLUMNS = [*GAIN_ROWS, "clean_tail5", "clean_mean", "clean_min"]


def _row(name: str, res: dict, verdict_text: str) -> str:
    """One markdown row: gains signed, clean PSNRs plain."""
    cells = (f"{res[c]:+.2f}" if c in GAIN_ROWS else f"{res[c]:.2f}" for c in COLUMNS)
    return f"| {name} | " + " | ".join(cells) + f" | {verdict_text} |"


def differences(cand: dict, shipped: dict) -> dict[str, Difference]:
    """Per rule row: candidate − shipped with its 95 % photo-bootstrap interval."""
    from streamer.evaluate.compare import paired_difference
    from streamer.evaluate.table import tail_mean

    out = {row: paired_difference(shipped["crops"][row], cand["crops"][row]) for row in GAIN_ROWS}
    out["clean_tail5"] = paired_difference(shipped["crops"]["clean"], cand["crops"]["clean"], tail_mean)
    return out


def noise_aware_verdict(diffs: dict[str, Difference], cand: dict) -> list[str]:
    """The rule proposed to steering in session 16, reported, not in force: no row worse with an
    interval clear of zero, and at least one dirt row better with one (plus the clean floor)."""
    fails = [f"{row} {d} worse" for row, d in diffs.items() if d.high < 0.0]
    if not any(d.low > 0.0 for row, d in diffs.items() if row.startswith("dirt")):
        fails.append("no dirt row better with an interval clear of 0")
    if cand["clean_mean"] < CLEAN_FLOOR_DB:
        fails.append(f"clean mean {cand['clean_mean']:.2f} < {CLEAN_FLOOR_DB} dB")
    return fails


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("candidates", nargs="+", type=Path)
    p.add_argument("--model", default="fast", help="the registered model the weights are for (fast, fast-drops)")
    p.add_argument("--against", type=Path, help="default: the shipped streamer/weights/MODEL.safetensors")
    p.add_argument("--clean", type=Path, default=Path("../shared/data/images"))
    p.add_argument("--cache", type=Path, default=Path("runs/gate"))
    p.add_argument("--split", choices=("val", "train"), default="val",
                   help="photos for the gain rows (val = the rule; train = the confirmation)")
    args = p.parse_args()
    missing = [str(w) for w in [*args.candidates, args.against] if w is not None and not w.is_file()]
    if missing:
        p.error(f"weights not found: {', '.join(missing)}")
    import torch

    torch.set_num_threads(1)
    against = args.against or Path(f"streamer/weights/{args.model}.safetensors")
    shipped = measure(against, args.clean, args.cache, args.split, args.model)
    print("| weights | " + " | ".join(COLUMNS) + " | verdict |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    print(_row(f"{against} (shipped)", shipped, ""), flush=True)
    all_pass, diffs, proposed = True, {}, {}
    for w in args.candidates:
        cand = measure(w, args.clean, args.cache, args.split, args.model)
        fails = verdict(cand, shipped)
        all_pass &= not fails
        diffs[w] = differences(cand, shipped)
        proposed[w] = noise_aware_verdict(diffs[w], cand)
        print(_row(str(w), cand, "SHIP" if not fails else "no: " + "; ".join(fails)), flush=True)
    rows = [*GAIN_ROWS, "clean_tail5"]
    print("\nCandidate − shipped, 95 % interval over photos (paired bootstrap; * = interval excludes 0):\n")
    print("| weights | " + " | ".join(rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for w, d in diffs.items():
        print(f"| {w} | " + " | ".join(f"{d[r]}{' *' if d[r].resolved else ''}" for r in rows) + " |")
    from streamer.evaluate.compare import SEED_SPREAD

    print(f"\nLargest gap between two seeds of one recipe (docs/model-log.md E50), which these photo "
          f"intervals do not include: {', '.join(f'{r} {v}' for r, v in SEED_SPREAD.items())}")
    print("\nThe noise-aware rule proposed to steering (a report; the verdict above is the rule in force):\n")
    for w, fails in proposed.items():
        print(f"- {w}: " + ("would pass" if not fails else "no: " + "; ".join(fails)))
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
