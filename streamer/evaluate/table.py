"""Table 1 of Eigen et al. 2013, our way: mean ± std PSNR and SSIM per method, gain over input,
plus UQI (the DRN case study reports PSNR/SSIM/UQI).

Rows: the corrupted input, each model, each baseline; then the clean-input check (each model
restoring the *clean* images, PSNR/SSIM against themselves: a good restorer leaves them alone).
"""

from __future__ import annotations

import numpy as np

INPUT_ROW = "input (corrupted)"


def summarize(scores: dict[str, list[tuple[float, ...]]], baseline: str = INPUT_ROW) -> list[dict]:
    """scores: method -> [(psnr, ssim, uqi) per image]; gains are per image, then averaged."""
    base = np.array(scores[baseline], np.float64)
    rows = []
    for method, values in scores.items():
        v = np.array(values, np.float64)
        row = {"method": method, "n": len(v),
               "psnr_mean": float(v[:, 0].mean()), "psnr_std": float(v[:, 0].std()),
               "ssim_mean": float(v[:, 1].mean()), "ssim_std": float(v[:, 1].std()),
               "uqi_mean": float(v[:, 2].mean()), "uqi_std": float(v[:, 2].std())}
        if len(v) == len(base):
            row["psnr_gain"] = float((v[:, 0] - base[:, 0]).mean())
            row["ssim_gain"] = float((v[:, 1] - base[:, 1]).mean())
            row["uqi_gain"] = float((v[:, 2] - base[:, 2]).mean())
        rows.append(row)
    return rows


def tail_mean(values: np.ndarray, fraction: float = 0.05) -> float:
    """Mean of the worst ``fraction`` of values (at least one): the clean-fidelity tail.

    Steadier than the minimum, which one crop decides, and still about the frames a net harms.
    """
    worst = np.sort(np.asarray(values, np.float64))[: max(1, int(round(fraction * len(values))))]
    return float(worst.mean())


def summarize_clean(scores: dict[str, list[tuple[float, ...]]]) -> list[dict]:
    rows = []
    for method, values in scores.items():
        v = np.array(values, np.float64).reshape(len(values), 3)
        rows.append({"method": method, "n": len(v),
                     "psnr_mean": float(v[:, 0].mean()), "psnr_std": float(v[:, 0].std()),
                     "psnr_min": float(v[:, 0].min()), "psnr_p5": float(np.percentile(v[:, 0], 5)),
                     "psnr_tail5": tail_mean(v[:, 0]),
                     "ssim_mean": float(v[:, 1].mean()), "uqi_mean": float(v[:, 2].mean())})
    return rows


def format_table(result: dict) -> str:
    """Markdown: paste-ready for the README."""
    crop, crops = result.get("crop"), result.get("crops", 1)
    head = (f"Corruption: {result['corruption']}{' (heavy)' if result['heavy'] else ''}, "
            f"{result['n_images']} images ({result['split']} split), seed {result['seed']}"
            + (f", {crops} crops of {crop} px per photo" if crops > 1 else f", centre crop {crop} px" if crop else "")
            + (f" ({result['crop_smaller_photos']} photos smaller on a side: that side whole)"
               if result.get("crop_smaller_photos") else ""))
    lines = [head]
    if result["rows"]:  # none with corruption "none": only the clean-input check ran
        lines += ["", "| method | PSNR (dB) | SSIM | UQI | PSNR gain (dB) | gain 95 % interval | SSIM gain | UQI gain |",
                  "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        gains = [f"{r[k]:+.{d}f}" if k in r else "-" for k, d in (("psnr_gain", 2), ("ssim_gain", 4), ("uqi_gain", 4))]
        # over photos (streamer.evaluate.compare): what another set of photos could have given
        gains.insert(1, "[{:+.2f}, {:+.2f}]".format(*r["psnr_gain_ci95"]) if "psnr_gain_ci95" in r else "-")
        lines.append(f"| {r['method']} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | "
                     f"{r['ssim_mean']:.4f} ± {r['ssim_std']:.4f} | {r['uqi_mean']:.4f} ± {r['uqi_std']:.4f} | "
                     + " | ".join(gains) + " |")
    if result.get("clean_rows"):
        lines += ["", "Clean-input check (restore clean images, compare with themselves):", "",
                  "| model | PSNR (dB) | min PSNR (dB) | worst 5 % mean (dB) | SSIM | UQI |",
                  "|---|---|---|---|---|---|"]
        for r in result["clean_rows"]:
            lines.append(f"| {r['method']} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | "
                         f"{r['psnr_min']:.2f} | {r['psnr_tail5']:.2f} | {r['ssim_mean']:.4f} | {r['uqi_mean']:.4f} |")
    return "\n".join(lines)
