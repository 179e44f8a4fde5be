"""Which restorer to put under `fast-drops`' finder? A quick screen, not the ship rule.

    python scripts/screen_restorers.py RESTORER.safetensors [...] [--finder checkpoints/fast_e26/init.safetensors]

Composes each restorer with the finder (scripts/compose.py) into --out and prints the drop and
dirt gains and the clean mean on the 18 validation centre crops (seed 0, one thread, ~10 s
each). Candidates it likes go through `scripts/ship_gate.py --model fast-drops`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compose import compose


def main() -> None:
    import torch

    from streamer.evaluate.runner import EvalRequest, run_eval

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("restorers", nargs="+", type=Path)
    p.add_argument("--finder", default="checkpoints/fast_e26/init.safetensors")
    p.add_argument("--clean", type=Path, default=Path("../shared/data/images"))
    p.add_argument("--out", type=Path, default=Path("runs/screen"))
    args = p.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for src in args.restorers:
        w = args.out / f"{src.parent.name}_{src.stem}+finder.safetensors"
        compose(str(w), str(src), args.finder)
        row = {}
        for kind in ("raindrop", "dirt"):
            r = run_eval(EvalRequest(clean=args.clean, corruption=kind, models=("fast-drops",),
                                     weights={"fast-drops": w}, crop=256, baselines=False,
                                     clean_check=kind == "dirt"))
            row[kind] = round(next(x["psnr_gain"] for x in r["rows"] if x["method"] == "fast-drops"), 3)
        row["clean_mean"] = round(r["clean_rows"][0]["psnr_mean"], 1)
        results[str(src)] = row
        print(f"{src}: drops {row['raindrop']:+.2f}  dirt {row['dirt']:+.2f}  clean {row['clean_mean']:.1f}", flush=True)
    (args.out / "screen.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
