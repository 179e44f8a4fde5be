"""Weighted average of weight files of one architecture (a "model soup", Wortsman et al., ICML 2022).

Fine-tunes that start from the same weights stay in one basin, and their average can beat each of
them: the shipped `fast` of session 10 is 3 parts E29c + 1 part E25b (docs/model-log.md E30).

    python scripts/soup.py OUT.safetensors A.safetensors:3 B.safetensors:1

A file without a zero-initialised option the others have (``glob``, ``priors``: parts that
start at zero, so the net without them *is* the net with them at zero) counts as zeros there.
"""

from __future__ import annotations

import argparse
import json

from safetensors.torch import load_file, save_file

from streamer.models.weights import ARCH_KEY, sha256_file, weights_arch


# options whose parts start at zero (models/fast.py), so a file without them holds them at zero
ZERO_INIT_OPTIONS = frozenset({"glob", "glob_max", "priors"})


def soup_arch(archs: list[dict]) -> dict:
    """The soup's architecture: the parts' common options, plus any zero-initialised option one
    of them has. Any other difference is an error."""
    merged = {k: v for a in archs for k, v in a.items() if k in ZERO_INIT_OPTIONS and v}
    rest = {json.dumps({k: v for k, v in a.items() if k not in ZERO_INIT_OPTIONS}, sort_keys=True)
            for a in archs}
    if len(rest) > 1:
        raise SystemExit(f"soup: the files have different architecture options: {sorted(rest)}")
    return {**json.loads(rest.pop()), **merged}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("parts", nargs="+", metavar="FILE[:WEIGHT]")
    args = p.parse_args()
    parts = [(s.rsplit(":", 1)[0], float(s.rsplit(":", 1)[1])) if ":" in s else (s, 1.0) for s in args.parts]
    arch = soup_arch([weights_arch(f) for f, _ in parts])
    total, acc = sum(w for _, w in parts), {}
    for f, w in parts:  # a key only some files have is summed over those: the others count as 0
        for k, v in load_file(f).items():
            acc[k] = acc.get(k, 0.0) + v.double() * (w / total)
    recipe = [{"file": f, "weight": w, "sha256": sha256_file(f)} for f, w in parts]
    meta = {ARCH_KEY: json.dumps(arch, sort_keys=True), "soup": json.dumps(recipe)}
    save_file({k: v.float().contiguous() for k, v in acc.items()}, args.out, metadata=meta)
    print(f"wrote {args.out}: " + " + ".join(f"{w:g}×{f}" for f, w in parts))


if __name__ == "__main__":
    main()
