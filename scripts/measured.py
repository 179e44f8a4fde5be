"""Print the README's "Measured" tables from the JSON that `streamer eval` and `streamer bench`
wrote, so the numbers in the README are copied by a program, not by hand.

    python scripts/measured.py runs/eval runs/bench > /tmp/measured.md
    python scripts/measured.py runs/eval runs/bench --readme README.md   # or: write them into it
                                         # (rows without fresh JSON stay as the README has them)

runs/eval holds fast_<kind>.json (the default model and the opt-in fast-drops, no baselines),
ref_<kind>.json (the reference models and baselines on the same seeded inputs) and the INT8 /
OpenVINO fp32 pairs int8_<kind>.json, ovfp32_<kind>.json; runs/bench holds bench JSONs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

KINDS = ("dirt", "raindrop", "streaks")


def _rows(path: Path) -> tuple[list[dict], list[dict], dict]:
    if not path.exists():
        return [], [], {}
    r = json.loads(path.read_text())
    return r["rows"], r.get("clean_rows") or [], r


def quality(eval_dir: Path) -> str:
    out = []
    clean: dict[str, dict] = {}
    for kind in KINDS:
        fast_rows, fast_clean, meta = _rows(eval_dir / f"fast_{kind}.json")
        ref_rows, ref_clean, ref_meta = _rows(eval_dir / f"ref_{kind}.json")
        meta = meta or ref_meta
        if not meta:
            continue
        rows = {r["method"]: r for r in ref_rows} | {r["method"]: r for r in fast_rows}
        first = ("input (corrupted)", "fast", "fast-drops")
        order = list(first) + [m for m in rows if m not in first]
        inp = rows["input (corrupted)"]["psnr_mean"]
        out.append(f"**{kind}** (input PSNR {inp:.2f} dB)\n")
        out.append("| method | PSNR (dB) | SSIM | UQI | gain (dB) |\n|---|---|---|---|---|")
        for m in order:
            if m in rows:
                r = rows[m]
                name = f"**{m}**" if m == "fast" else m
                q = f"{r['uqi_mean']:.4f}" if "uqi_mean" in r else "-"  # evals before UQI existed
                out.append(f"| {name} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['ssim_mean']:.4f} "
                           f"| {q} | {r['psnr_gain']:+.2f} |")
        out.append("")
        for r in ref_clean + fast_clean:
            clean.setdefault(r["method"], r)
    if clean:
        out.append("**Clean input** (restore clean photos, PSNR against themselves; goal ≥ 38 dB):\n")
        out.append("| model | PSNR (dB) | min (dB) | UQI |\n|---|---|---|---|")
        for m, r in clean.items():
            q = f"{r['uqi_mean']:.4f}" if "uqi_mean" in r else "-"
            out.append(f"| {m} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['psnr_min']:.2f} | {q} |")
        out.append("")
    for name, label in (("dirt_heavy", "dirt beyond the training ranges (`--heavy`)"),
                        ("dirt_full", "whole validation photos (`--crop 0`)"),
                        ("dirt_big", "drops and stains sized for a 1080p frame (`--frame-px 1920`)"),
                        ("raindrop_heavy", "bigger, denser drops than trained on (`--corruption raindrop --heavy`)"),
                        ("raindrop_big", "drops sized for a 1080p frame (`--corruption raindrop --frame-px 1920`)")):
        rows, _, meta = _rows(eval_dir / f"fast_{name}.json")
        if rows:
            r = {x["method"]: x for x in rows}
            models = ", ".join(f"{m} {x['psnr_mean']:.2f} dB ({x['psnr_gain']:+.2f})" for m, x in r.items()
                               if m != "input (corrupted)")
            out.append(f"- {label}: input {r['input (corrupted)']['psnr_mean']:.2f} dB → {models}")
    out.append("")
    for path in sorted(eval_dir.glob("int8_*.json")):
        fp32 = path.with_name(path.name.replace("int8_", "ovfp32_"))
        if fp32.exists():
            q, f = json.loads(path.read_text()), json.loads(fp32.read_text())
            gain = lambda r: next(x for x in r["rows"] if x["method"] != "input (corrupted)")  # noqa: E731
            gq, gf = gain(q), gain(f)
            out.append(f"- INT8 {gq['method']} on {q['corruption']}: gain {gq['psnr_gain']:+.2f} vs "
                       f"{gf['psnr_gain']:+.2f} dB fp32 (cost {gf['psnr_gain'] - gq['psnr_gain']:.2f} dB)")
    return "\n".join(out)


def signs(eval_dir: Path) -> str:
    """Character accuracy of Tesseract on pasted signs (`streamer eval-signs`), one row per setting."""
    results = [(kind, heavy, json.loads(p.read_text())) for kind in KINDS for heavy in (False, True)
               if (p := eval_dir / f"signs_{kind}{'_heavy' if heavy else ''}.json").exists()]
    if not results:
        return ""
    methods = [r["method"] for r in results[0][2]["rows"]]
    out = ["| corruption | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for kind, heavy, r in results:
        acc = {row["method"]: row for row in r["rows"]}
        cells = [f"{100 * acc[m]['char_accuracy']:.1f} % ({100 * acc[m]['exact']:.0f} %)" if m in acc else "-"
                 for m in methods]
        out.append(f"| {kind}{' (heavy)' if heavy else ''} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def speed(bench_dir: Path) -> str:
    """One row per (model, backend, INT8, frames in flight); repeated runs give median and range."""
    import statistics

    groups: dict[tuple, list[dict]] = {}
    for path in sorted(bench_dir.glob("*.json")):
        r = json.loads(path.read_text())
        key = (r.get("model", "fast"), r["backend"], bool(r.get("int8")),
               r.get("inflight", 1) if r["backend"] == "openvino" else 1)
        groups.setdefault(key, []).append(r)
    out = ["| backend | passthrough fps | pipeline fps | network ms/frame | decode ms | encode ms "
           "| CPU ms/frame: passthrough → pipeline | runs |",
           "|---|---|---|---|---|---|---|---|"]
    for (model, backend, int8, inflight), runs in groups.items():
        label = ("" if model == "fast" else f"{model}: ") + backend + (" INT8" if int8 else " fp32" if backend != "torch" else "")
        if backend == "openvino":
            label += f", {inflight} in flight"
        fps = [r["runs"]["pipeline"]["fps"] for r in runs]
        med = statistics.median(fps)
        rng = f" ({min(fps):.1f}–{max(fps):.1f})" if len(fps) > 1 else ""
        mid = min(runs, key=lambda r: abs(r["runs"]["pipeline"]["fps"] - med))
        p, f = mid["runs"]["passthrough"], mid["runs"]["pipeline"]
        cpu = (f"{p['cpu_ms_per_frame']:.1f} → {f['cpu_ms_per_frame']:.1f}" if "cpu_ms_per_frame" in f
               else "–")  # bench JSON before session 14 has no CPU times
        out.append(f"| {label} | {p['fps']:.1f} | **{med:.1f}**{rng} | {f['stage_ms']['network']:.1f} "
                   f"| {f['stage_ms']['decode']:.1f} | {f['stage_ms']['encode']:.1f} | {cpu} | {len(runs)} |")
    return "\n".join(out)


def _merge(old: str, new: str) -> str:
    """``new``'s rows where it has them, the README's ``old`` rows for the rest (keyed by the first
    cell): rerunning one part (`measure.sh fast`) keeps the rows of the others (the 25-min
    reference rows, the speed runs) as they stand."""
    key = lambda row: row.split("|")[1].strip().strip("*")  # noqa: E731
    old_rows, new_rows = old.rstrip("\n").split("\n"), new.rstrip("\n").split("\n")
    fresh = {key(r): r for r in new_rows[2:]}
    rows = [fresh.pop(key(r), r) for r in old_rows[2:]] + list(fresh.values())
    return "\n".join(new_rows[:2] + rows) + "\n"


def into_readme(readme: str, measured: str) -> str:
    """``readme`` with its "## Measured" section's tables (row by row, ``_merge``), "**kind** (input
    PSNR …)" headings and "- label: …" result lines replaced by the freshly printed ones, in
    order; prose is kept."""
    a = readme.index("## Measured")
    b = readme.index("\n## ", a + 1)
    section = readme[a:b]
    table = re.compile(r"(?:^\|.*\n?)+", re.M)
    old_t, new_t = table.findall(section), table.findall(measured + "\n")
    if len(old_t) != len(new_t):
        raise SystemExit(f"README has {len(old_t)} tables under Measured, measured.py printed {len(new_t)}")
    parts, pos = [], 0
    for m, new in zip(table.finditer(section), new_t):
        new = _merge(m.group(), new)
        parts += [section[pos:m.start()], new if m.group().endswith("\n") else new.rstrip("\n")]
        pos = m.end()
    section = "".join(parts) + section[pos:]
    for line in measured.splitlines():  # one line per key: "**dirt** (input", "- INT8 fast on dirt:"
        key = re.match(r"(\*\*\w+\*\* \(input|- [^:]+:)", line)
        if key:
            section = re.sub("^" + re.escape(key.group(1)) + ".*$", lambda _: line, section, count=1, flags=re.M)
    return readme[:a] + section + readme[b:]


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    eval_dir, bench_dir = (Path(a) for a in sys.argv[1:3])
    text = "\n\n".join([quality(eval_dir), signs(eval_dir), speed(bench_dir)])
    if "--readme" in sys.argv:
        path = Path(sys.argv[sys.argv.index("--readme") + 1])
        path.write_text(into_readme(path.read_text(), text))
    else:
        print(text)
