"""Is model B better than model A on these photos, or is the difference noise?

Two evaluations of the same photos with the same seed see the same corrupted crops, so their
scores pair up crop by crop. Crops cut from one photo share its scene and are not independent,
so the interval resamples *photos* (a cluster bootstrap, Efron & Tibshirani ch. 6). With the 18
validation photos, the difference between two checkpoints of one run is pinned to a few
hundredths of a dB, between two designs only to a tenth or two, and a single model's gain
(``streamer eval``'s interval column) to about ±1 dB (docs/model-log.md, session 16).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from streamer.errors import ConfigError
from streamer.evaluate.table import INPUT_ROW, tail_mean

# The largest gap between two seeds of one recipe per ship-gate row (E50a–e: four same-recipe
# pairs, two recipes; session 19): training noise that intervals over photos do not include
SEED_SPREAD = {"dirt": 0.033, "raindrop": 0.079, "streaks": 0.011, "dirt, whole photos": 0.05,
               "dirt, 1080p-sized": 0.07, "dirt, heavy": 0.03, "clean_tail5": 1.26}


@dataclass(frozen=True)
class Difference:
    """``delta`` = stat(B) − stat(A) on all crops; ``low``..``high`` its bootstrap interval."""

    delta: float
    low: float
    high: float
    photos: int

    @property
    def has_interval(self) -> bool:
        """One photo cannot be resampled: its difference has no interval (NaN bounds)."""
        return bool(np.isfinite(self.low) and np.isfinite(self.high))

    @property
    def resolved(self) -> bool:
        """The interval excludes zero: the sign of the difference is not the photos' luck."""
        return self.has_interval and (self.low > 0.0 or self.high < 0.0)

    @property
    def interval(self) -> str:
        return f"[{self.low:+.3f}, {self.high:+.3f}]" if self.has_interval else f"none ({self.photos} photo)"

    def __str__(self) -> str:
        return f"{self.delta:+.3f} {self.interval}"


def photo_of(key: str) -> str:
    """Scores are keyed ``file#k`` (crop k of a photo) or ``file``: the photo is the cluster."""
    return key.split("#", 1)[0]


def paired_difference(a: Mapping[str, float], b: Mapping[str, float],
                      stat: Callable[[np.ndarray], float] = np.mean, *, level: float = 0.95,
                      resamples: int = 2000, seed: int = 0) -> Difference:
    """stat(b) − stat(a) over the crops both scored, with a percentile interval from resampling
    photos with replacement (each drawn photo brings all its crops, in both A and B)."""
    keys = sorted(set(a) & set(b))
    if not keys:
        raise ValueError("the two evaluations share no crops: same photos, crops and seed?")
    photos: dict[str, list[str]] = {}
    for k in keys:
        photos.setdefault(photo_of(k), []).append(k)
    groups = [(np.array([a[k] for k in ks]), np.array([b[k] for k in ks])) for ks in photos.values()]
    va, vb = (np.concatenate([g[i] for g in groups]) for i in (0, 1))
    delta = float(stat(vb) - stat(va))
    if len(groups) < 2:  # resampling one photo always draws that photo: a zero-width "interval"
        return Difference(delta, float("nan"), float("nan"), len(groups))
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    for r in range(resamples):
        pick = [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        boot[r] = stat(np.concatenate([g[1] for g in pick])) - stat(np.concatenate([g[0] for g in pick]))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Difference(delta, float(low), float(high), len(groups))


def crop_scores(per_image: list[dict], method: str, *, clean: bool = False) -> dict[str, float]:
    """``file#k`` -> PSNR gain over the input (or, ``clean=True``, the clean-input PSNR) of one
    method, from ``run_eval``'s ``per_image`` records."""
    out = {}
    for row in per_image:
        key = f"{row['file']}#{row.get('crop_index', 0)}"  # results from before --crops have none
        if clean:
            out[key] = row[f"clean {method}"][0]
        else:
            out[key] = row[method][0] - row[INPUT_ROW][0]
    return out


# what must match for two `streamer eval` results to pair up crop by crop
SAME_SETUP = ("corruption", "heavy", "seed", "split", "crop", "crops", "frame_px")


def compare_results(base: dict, new: dict) -> list[dict]:
    """Per method that both `streamer eval` results scored: new − base of the mean PSNR gain
    and, where both ran the clean check, of the clean mean and worst-5 % PSNR, each with its
    photo-bootstrap interval. Typical use: the shipped weights against a fine-tune."""
    for key in SAME_SETUP:
        if base.get(key) != new.get(key):
            raise ConfigError(f"the two evaluations differ in {key} ({base.get(key)!r} vs {new.get(key)!r}): "
                              "rerun with the same --corruption/--seed/--split/--crop/--crops/--frame-px/--heavy")

    def scored(res: dict, key: str) -> bool:  # per-crop scores (results before session 13 lack clean ones)
        return all(key in row for row in res["per_image"])

    def methods(res: dict) -> list[str]:  # scored rows, and the clean check's (all there is for --corruption none)
        names = [r["method"] for r in [*res.get("rows", []), *res.get("clean_rows", [])]]
        return list(dict.fromkeys(m for m in names if m != INPUT_ROW))

    def models(res: dict, names: list[str]) -> list[str]:  # the --model entries, not the baselines
        listed = res.get("models")
        return [m for m in names if m in listed] if listed else names

    old, mine = methods(base), methods(new)
    pairs = [(m, m, m) for m in mine if m in old]
    # `--model fast` against `--model runs/x.safetensors`: one model left unpaired on each side
    left_old, left_mine = ([m for m in models(r, ms) if m not in shared]
                           for r, ms, shared in ((base, old, mine), (new, mine, old)))
    if len(left_old) == len(left_mine) == 1:
        pairs.append((f"{left_mine[0]} vs {left_old[0]}", left_old[0], left_mine[0]))
    rows = []
    for label, b, n in pairs:
        if scored(base, b) and scored(new, n):
            d = _paired(crop_scores(base["per_image"], b), crop_scores(new["per_image"], n))
            rows.append({"method": label, "measure": "PSNR gain", "difference": d})
    for label, b, n in pairs:
        if scored(base, f"clean {b}") and scored(new, f"clean {n}"):
            x, y = crop_scores(base["per_image"], b, clean=True), crop_scores(new["per_image"], n, clean=True)
            rows.append({"method": label, "measure": "clean PSNR mean", "difference": _paired(x, y)})
            rows.append({"method": label, "measure": "clean PSNR worst 5 %", "difference": _paired(x, y, tail_mean)})
    if not rows:
        raise ConfigError(f"the two evaluations share no method ({', '.join(old) or 'none'} vs "
                          f"{', '.join(mine) or 'none'}): compare results of the same --model, or one "
                          "model each (a file scored as its model: --model fast --weights fast=PATH)")
    return rows


def _paired(a: Mapping[str, float], b: Mapping[str, float], stat=np.mean) -> Difference:
    try:
        return paired_difference(a, b, stat)
    except ValueError as exc:  # e.g. two folders of photos: one line, not a traceback
        raise ConfigError(str(exc)) from None


def format_comparison(rows: list[dict], base_name: str, new_name: str) -> str:
    """Markdown: one line per method and measure; * = the interval excludes zero."""
    lines = [f"{new_name} − {base_name}, 95 % interval from resampling photos (* = excludes 0)", "",
             "| method | measure | difference (dB) | 95 % interval | photos |", "|---|---|---|---|---|"]
    for r in rows:
        d = r["difference"]
        lines.append(f"| {r['method']} | {r['measure']} | {d.delta:+.3f}{' *' if d.resolved else ''} | "
                     f"{d.interval} | {d.photos} |")
    lines += ["", "The interval covers which photos were drawn, not which seed trained the weights: two "
              f"seeds of one recipe differed by up to {SEED_SPREAD['dirt']:.2f} dB on dirt and "
              f"{SEED_SPREAD['clean_tail5']:.1f} dB on the worst clean crops (docs/model-log.md E50), and such "
              "gaps can show as resolved (*) here. Train a second seed before trusting a small difference."]
    return "\n".join(lines)
