"""Paired photo-bootstrap differences (streamer.evaluate.compare) and the ship gate's report."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from streamer.evaluate.compare import crop_scores, paired_difference, photo_of
from streamer.evaluate.table import INPUT_ROW, tail_mean


def _crops(values_per_photo: list[list[float]]) -> dict[str, float]:
    return {f"p{i}.jpg#{k}": v for i, vs in enumerate(values_per_photo) for k, v in enumerate(vs)}


def test_a_constant_shift_is_resolved_exactly() -> None:
    rng = np.random.default_rng(1)
    a = _crops(rng.normal(30, 3, (18, 4)).tolist())
    b = {k: v + 0.25 for k, v in a.items()}
    d = paired_difference(a, b)
    assert d.delta == pytest.approx(0.25) and d.low == pytest.approx(0.25) and d.high == pytest.approx(0.25)
    assert d.resolved and d.photos == 18 and str(d) == "+0.250 [+0.250, +0.250]"


def test_crops_of_one_photo_are_not_independent_evidence() -> None:
    """Two photos, 50 crops each: B wins every crop of one photo and loses every crop of the
    other. Resampling crops would call +0.1 dB certain; resampling photos must not."""
    a = _crops([[30.0] * 50, [30.0] * 50])
    b = _crops([[31.0] * 50, [29.2] * 50])
    d = paired_difference(a, b)
    assert d.delta == pytest.approx(0.1)
    assert d.low < 0 < d.high and not d.resolved


def test_one_photo_has_no_interval_and_is_never_resolved() -> None:
    """A held-out split of a small folder can be one photo: resampling it always draws it, so a
    zero-width interval would mark any difference as certain."""
    a = _crops([[30.0, 31.0, 29.0]])
    d = paired_difference(a, {k: v - 0.016 for k, v in a.items()})
    assert d.delta == pytest.approx(-0.016) and d.photos == 1
    assert not d.has_interval and not d.resolved and str(d) == "-0.016 none (1 photo)"


def test_the_interval_narrows_with_more_photos_and_follows_the_statistic() -> None:
    rng = np.random.default_rng(2)
    few = rng.normal(0.05, 0.3, 8)
    many = rng.normal(0.05, 0.3, 400)
    base = lambda n: _crops([[30.0, 31.0]] * n)  # noqa: E731
    widths = []
    for noise in (few, many):
        a = base(len(noise))
        b = {k: v + noise[int(k[1:].split(".")[0])] for k, v in a.items()}
        d = paired_difference(a, b)
        widths.append(d.high - d.low)
    assert widths[1] < widths[0] / 3
    # a tail statistic: B lowers only the worst crop of each photo
    a = _crops([[20.0, 40.0, 41.0]] * 10)
    b = _crops([[19.0, 40.0, 41.0]] * 10)
    assert paired_difference(a, b, tail_mean).delta == pytest.approx(-1.0)
    assert paired_difference(a, b).delta == pytest.approx(-1 / 3)


def test_disjoint_evaluations_are_refused() -> None:
    with pytest.raises(ValueError, match="share no crops"):
        paired_difference({"a.jpg#0": 1.0}, {"b.jpg#0": 1.0})


def test_crop_scores_reads_run_eval_records() -> None:
    per_image = [{"file": "a.jpg", "crop_index": 0, INPUT_ROW: (25.0, 0.9, 0.9), "fast": (27.5, 0.95, 0.9),
                  "clean fast": (45.0, 0.99, 0.99)},
                 {"file": "a.jpg", "crop_index": 1, INPUT_ROW: (20.0, 0.9, 0.9), "fast": (21.0, 0.95, 0.9),
                  "clean fast": (40.0, 0.99, 0.99)}]
    assert crop_scores(per_image, "fast") == {"a.jpg#0": 2.5, "a.jpg#1": 1.0}
    assert crop_scores(per_image, "fast", clean=True) == {"a.jpg#0": 45.0, "a.jpg#1": 40.0}
    assert photo_of("a.jpg#1") == photo_of("a.jpg") == "a.jpg"


def test_ship_gate_reports_an_interval_for_every_rule_row() -> None:
    path = Path(__file__).parents[1] / "scripts" / "ship_gate.py"
    spec = importlib.util.spec_from_file_location("ship_gate", path)
    gate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gate)
    crops = {row: _crops([[1.0, 2.0]] * 5) for row in gate.GAIN_ROWS} | {"clean": _crops([[40.0, 50.0]] * 5)}
    shipped = {"crops": crops}
    cand = {"crops": {row: {k: v + (0.1 if row == "dirt" else 0.0) for k, v in c.items()} for row, c in crops.items()}}
    d = gate.differences(cand, shipped)
    assert set(d) == {*gate.GAIN_ROWS, "clean_tail5"}
    assert d["dirt"].delta == pytest.approx(0.1) and d["dirt"].resolved
    assert d["raindrop"].delta == 0 and not d["raindrop"].resolved
    assert gate.noise_aware_verdict(d, {"clean_mean": 60.0}) == []  # a resolved dirt win, no resolved loss
    d["raindrop"] = gate.differences({"crops": {row: {k: v - 0.1 for k, v in c.items()}
                                                for row, c in crops.items()}}, shipped)["raindrop"]
    fails = gate.noise_aware_verdict(d, {"clean_mean": 30.0})
    assert fails[0].startswith("raindrop -0.100") and fails[1] == "clean mean 30.00 < 38.0 dB"
    del d["dirt"]
    assert "no dirt row better" in gate.noise_aware_verdict(d, {"clean_mean": 60.0})[-1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    import cv2

    out = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(out / f"img{i}.png"), rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    return out


def test_cli_compare_pairs_two_eval_results(photos: Path, tmp_path: Path, capsys) -> None:
    """The shipped drn against an untrained one on the same crops: the printed difference is the
    difference of the two tables' gains, with an interval; a mismatched setup is one line."""
    import json

    from streamer.cli import main
    from streamer.models.registry import get_spec
    from streamer.models.weights import save_weights

    untrained = save_weights(get_spec("drn").build(), tmp_path / "drn0.safetensors")
    common = ["eval", "--clean", str(photos), "--corruption", "streaks", "--model", "drn", "--split", "all",
              "--crop", "48", "--crops", "2", "--no-baselines"]
    assert main([*common, "--weights", f"drn={untrained}", "--json", str(tmp_path / "base.json")]) == 0
    assert main([*common, "--json", str(tmp_path / "new.json")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "new.json")]) == 0
    out = capsys.readouterr().out
    gains = [next(r["psnr_gain"] for r in json.loads((tmp_path / n).read_text())["rows"] if r["method"] == "drn")
             for n in ("base.json", "new.json")]
    line = next(x for x in out.splitlines() if x.startswith("| drn | PSNR gain"))
    assert f"{gains[1] - gains[0]:+.3f}" in line and line.endswith("| 4 |")
    assert "| drn | clean PSNR worst 5 % |" in out

    assert main([*common, "--seed", "1", "--json", str(tmp_path / "seed1.json")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "seed1.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("streamer: error: the two evaluations differ in seed (0 vs 1)") and "\n" not in err
    (tmp_path / "other.json").write_text('{"fps": 30}')
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "other.json")]) == 1
    assert "is not a `streamer eval --json` result" in capsys.readouterr().err


def test_results_from_before_crops_and_clean_records_still_compare() -> None:
    """Session-11 JSONs: no crop_index and no per-crop clean scores: gain rows only."""
    from streamer.evaluate.compare import compare_results

    def result(gain: float) -> dict:
        per_image = [{"file": f"p{i}.jpg", INPUT_ROW: (20.0, 0.9, 0.9), "fast": (20.0 + gain + i % 2, 0.9, 0.9)}
                     for i in range(6)]
        return {"corruption": "dirt", "heavy": False, "seed": 0, "crop": 256, "frame_px": 1280,
                "rows": [{"method": INPUT_ROW}, {"method": "fast"}], "clean_rows": [{"method": "fast"}],
                "per_image": per_image}

    rows = compare_results(result(1.0), result(1.5))
    assert [(r["method"], r["measure"]) for r in rows] == [("fast", "PSNR gain")]
    assert rows[0]["difference"].delta == pytest.approx(0.5) and rows[0]["difference"].photos == 6


def test_eval_rows_carry_a_gain_interval_over_photos(photos: Path) -> None:
    from streamer.evaluate.runner import EvalRequest, run_eval

    res = run_eval(EvalRequest(clean=photos, corruption="streaks", models=("drn",), split="all", crop=48,
                               crops=2, baselines=False))
    row = next(r for r in res["rows"] if r["method"] == "drn")
    low, high = row["psnr_gain_ci95"]
    assert low <= row["psnr_gain"] <= high and low < high  # 4 photos that differ: a real width
    assert "psnr_gain_ci95" not in res["rows"][0]  # the input row has no gain to bound
    assert f"| [{low:+.2f}, {high:+.2f}] |" in res["table"]


def test_results_over_other_photos_are_a_config_error() -> None:
    from streamer.errors import ConfigError
    from streamer.evaluate.compare import compare_results

    def result(prefix: str) -> dict:
        return {"corruption": "dirt", "seed": 0, "rows": [{"method": "fast"}],
                "per_image": [{"file": f"{prefix}{i}.jpg", "crop_index": 0, INPUT_ROW: (20.0,), "fast": (21.0,)}
                              for i in range(3)]}

    with pytest.raises(ConfigError, match="share no crops"):
        compare_results(result("a"), result("b"))
    with pytest.raises(ConfigError, match=r"differ in split \('val' vs 'all'\)"):
        compare_results(result("a") | {"split": "val"}, result("a") | {"split": "all"})


def test_one_model_each_side_pairs_them_under_both_names() -> None:
    """`eval --model fast` against `eval --model runs/mine/best.safetensors`: the README's pattern
    named the two differently and was refused; one model on each side now pairs, two do not."""
    from streamer.errors import ConfigError
    from streamer.evaluate.compare import compare_results

    def result(method: str, gain: float, extra: tuple[str, ...] = ()) -> dict:
        per_image = [{"file": f"p{i}.jpg", "crop_index": 0, INPUT_ROW: (20.0,), method: (20.0 + gain + i % 2,)}
                     | {m: (20.0,) for m in extra} for i in range(6)]
        return {"corruption": "dirt", "seed": 0, "rows": [{"method": m} for m in (INPUT_ROW, method, *extra)],
                "per_image": per_image}

    rows = compare_results(result("fast", 1.0), result("runs/mine/best.safetensors", 1.25))
    assert rows[0]["method"] == "runs/mine/best.safetensors vs fast"
    assert rows[0]["difference"].delta == pytest.approx(0.25)
    with pytest.raises(ConfigError, match=r"share no method \(fast, drn vs x\.safetensors\): .*--weights fast=PATH"):
        compare_results(result("fast", 1.0, ("drn",)), result("x.safetensors", 1.0))
    # with the baselines both sides share (eval's default), the two models still pair
    base, mine = result("fast", 1.0, ("median 5x5",)), result("x.safetensors", 1.5, ("median 5x5",))
    base["models"], mine["models"] = {"fast": {}}, {"x.safetensors": {}}
    assert [r["method"] for r in compare_results(base, mine)] == ["median 5x5", "x.safetensors vs fast"]


def test_clean_only_results_compare_their_clean_rows() -> None:
    """`eval --corruption none` has no gain rows: its models are in clean_rows only."""
    from streamer.evaluate.compare import compare_results

    def result(psnr: float) -> dict:
        return {"corruption": "none", "seed": 0, "rows": [], "clean_rows": [{"method": "fast"}],
                "per_image": [{"file": f"p{i}.jpg", "crop_index": 0, "clean fast": (psnr + i,)} for i in range(4)]}

    rows = compare_results(result(50.0), result(51.0))
    assert [r["measure"] for r in rows] == ["clean PSNR mean", "clean PSNR worst 5 %"]
    assert rows[0]["difference"].delta == pytest.approx(1.0)
