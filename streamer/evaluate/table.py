"""Table 1 of Eigen et al. 2013, our way: mean ± std PSNR and SSIM per method, gain over input.

Rows: the corrupted input, each model, each baseline; then the clean-input check (each model
restoring the *clean* images, PSNR/SSIM against themselves: a good restorer leaves them alone).
"""

from __future__ import annotations

import numpy as np

INPUT_ROW = "input (corrupted)"


def summarize(scores: dict[str, list[tuple[float, float]]], baseline: str = INPUT_ROW) -> list[dict]:
    """scores: method -> [(psnr, ssim) per image]; gains are per image, then averaged."""
    base = np.array(scores[baseline], np.float64)
    rows = []
    for method, values in scores.items():
        v = np.array(values, np.float64)
        row = {"method": method, "n": len(v),
               "psnr_mean": float(v[:, 0].mean()), "psnr_std": float(v[:, 0].std()),
               "ssim_mean": float(v[:, 1].mean()), "ssim_std": float(v[:, 1].std())}
        if len(v) == len(base):
            row["psnr_gain"] = float((v[:, 0] - base[:, 0]).mean())
            row["ssim_gain"] = float((v[:, 1] - base[:, 1]).mean())
        rows.append(row)
    return rows


def summarize_clean(scores: dict[str, list[tuple[float, float]]]) -> list[dict]:
    return [{"method": m, "n": len(v),
             "psnr_mean": float(np.mean([p for p, _ in v])), "psnr_std": float(np.std([p for p, _ in v])),
             "psnr_min": float(np.min([p for p, _ in v])),
             "ssim_mean": float(np.mean([s for _, s in v]))}
            for m, v in scores.items()]


def format_table(result: dict) -> str:
    """Markdown: paste-ready for the README."""
    head = (f"Corruption: {result['corruption']}{' (heavy)' if result['heavy'] else ''}, "
            f"{result['n_images']} images ({result['split']} split), seed {result['seed']}"
            + (f", centre crop {result['crop']} px" if result.get("crop") else ""))
    lines = [head, "",
             "| method | PSNR (dB) | SSIM | PSNR gain (dB) | SSIM gain |",
             "|---|---|---|---|---|"]
    for r in result["rows"]:
        gain = f"{r['psnr_gain']:+.2f}" if "psnr_gain" in r else "-"
        sgain = f"{r['ssim_gain']:+.4f}" if "ssim_gain" in r else "-"
        lines.append(f"| {r['method']} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | "
                     f"{r['ssim_mean']:.4f} ± {r['ssim_std']:.4f} | {gain} | {sgain} |")
    if result.get("clean_rows"):
        lines += ["", "Clean-input check (restore clean images, compare with themselves):", "",
                  "| model | PSNR (dB) | min PSNR (dB) | SSIM |", "|---|---|---|---|"]
        for r in result["clean_rows"]:
            lines.append(f"| {r['method']} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | "
                         f"{r['psnr_min']:.2f} | {r['ssim_mean']:.4f} |")
    return "\n".join(lines)
