"""A `fast-drops` file from a restorer and a drop finder trained apart: the restorer's tensors plus
the finder's ``drops.*`` tensors, with the union of their architecture options.

    python scripts/compose.py OUT.safetensors RESTORER.safetensors FINDER.safetensors

Why: the finder's optimum transfers to newer restorers, and retraining it on one scored lower
every time (docs/model-log.md E23, E24); the shipped `fast-drops` has been a composition since
session 9 (E26), and since session 14 is the shipped `fast` + E21's finder.
"""

from __future__ import annotations

import argparse
import json

from safetensors.torch import load_file, save_file

from streamer.models.weights import ARCH_KEY, weights_arch


def compose(out: str, restorer: str, finder: str) -> dict:
    finder_t = {k: v for k, v in load_file(finder).items() if k.startswith("drops.")}
    if not finder_t:
        raise SystemExit(f"{finder}: no drops.* tensors (not a fast-drops file)")
    rest = {k: v for k, v in load_file(restorer).items() if not k.startswith("drops.")}
    arch = {**(weights_arch(restorer) or {}), "drops": True, "drop_context": True}
    save_file({**rest, **finder_t}, out, metadata={ARCH_KEY: json.dumps(arch)})
    return arch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("restorer")
    p.add_argument("finder")
    args = p.parse_args()
    print(f"wrote {args.out}: architecture {compose(args.out, args.restorer, args.finder)}")


if __name__ == "__main__":
    main()
