"""Weighted average of weight files of one architecture (a "model soup", Wortsman et al., ICML 2022).

Fine-tunes that start from the same weights stay in one basin, and their average can beat each of
them: the shipped `fast` of session 10 is 3 parts E29c + 1 part E25b (docs/model-log.md E30).

    python scripts/soup.py OUT.safetensors A.safetensors:3 B.safetensors:1
"""

from __future__ import annotations

import argparse
import json

from safetensors.torch import load_file, save_file

from streamer.models.weights import ARCH_KEY, sha256_file, weights_arch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("parts", nargs="+", metavar="FILE[:WEIGHT]")
    args = p.parse_args()
    parts = [(s.rsplit(":", 1)[0], float(s.rsplit(":", 1)[1])) if ":" in s else (s, 1.0) for s in args.parts]
    archs = {json.dumps(weights_arch(f), sort_keys=True) for f, _ in parts}
    if len(archs) > 1:
        raise SystemExit(f"soup: the files have different architecture options: {sorted(archs)}")
    total, acc = sum(w for _, w in parts), {}
    for f, w in parts:
        for k, v in load_file(f).items():
            acc[k] = acc.get(k, 0.0) + v.double() * (w / total)
    meta = {ARCH_KEY: archs.pop(), "soup": json.dumps([{"file": f, "weight": w, "sha256": sha256_file(f)}
                                                      for f, w in parts])}
    save_file({k: v.float().contiguous() for k, v in acc.items()}, args.out, metadata=meta)
    print(f"wrote {args.out}: " + " + ".join(f"{w:g}×{f}" for f, w in parts))


if __name__ == "__main__":
    main()
