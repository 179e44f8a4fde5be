"""scikit-image and SciPy are the `eval` extra: everything but `streamer eval` runs without them
(a Jetson or an app embedding streamer installs the core only), and eval without them is one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamer.errors import ConfigError, install_extra
from streamer.evaluate.metrics import require_eval, ssim
from streamer.evaluate.runner import EvalRequest, run_eval
from streamer.train.data import is_validation

REPO = Path(__file__).resolve().parents[1]
MISSING = f"streamer eval needs the eval extra (scikit-image, SciPy): {install_extra('eval')}"

# Run first in each child: scikit-image and SciPy cannot be imported, as in a core-only install.
BLOCK = textwrap.dedent("""
    import importlib.abc, sys

    class NoEvalExtra(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("skimage", "scipy"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, NoEvalExtra())
""")

CORE = BLOCK + textwrap.dedent("""
    import json, pkgutil
    import streamer
    from streamer.cli import main

    config, train_config, onnx = sys.argv[1:4]
    eval_imports = {}  # module -> what it could not import from the eval extra
    for info in pkgutil.walk_packages(streamer.__path__, "streamer."):
        if info.name == "streamer.__main__":  # would run the CLI
            continue
        try:
            __import__(info.name)
        except ModuleNotFoundError as exc:  # other extras (ray, openvino, gi) may be missing: not ours
            if (exc.name or "").partition(".")[0] in ("skimage", "scipy"):
                eval_imports[info.name] = exc.name
    codes = {"run": main(["-q", "run", "--config", config]),
             "train": main(["-q", "train", "--config", train_config, "--steps", "2"]),
             "export": main(["-q", "export", "--model", "fast", "--format", "onnx", "--size", "64x48", "-o", onnx]),
             "bench": main(["-q", "bench", "--size", "64x48", "--frames", "3", "--threads", "1"]),
             "info": main(["info", "--json"])}
    print(json.dumps({"eval_imports": eval_imports, "codes": codes,
                      "loaded": sorted(m for m in sys.modules if m.partition(".")[0] in ("skimage", "scipy"))}))
""")


def _child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def _photos(folder: Path, count: int = 4) -> Path:
    """Small gradient photos, at least one in the validation split (training validates on it)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:112].astype(np.float32)
    names = [f"img{i}.png" for i in range(count)]
    names.append(next(f"val{i}.png" for i in range(100) if is_validation(Path(f"val{i}.png"))))
    for k, name in enumerate(names):
        img = np.stack([xx * (2 + k), yy * 3, (xx + yy) * 1.5], axis=-1) % 256
        cv2.imwrite(str(folder / name), np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8))
    return folder


@pytest.mark.timeout(300)
def test_run_train_export_bench_and_every_module_work_without_the_eval_extra(clips: dict[str, Path], fast_weights: Path,
                                                                tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"source: {clips['small']}\nsinks: [{tmp_path / 'out.mp4'}]\n"
                      f"model: {{name: {fast_weights}, arch: fast}}\nbackend: {{threads: 1}}\n")
    train_config = tmp_path / "train.yaml"
    train_config.write_text(f"model: fast\ndata: {_photos(tmp_path / 'photos')}\nout: {tmp_path / 'run'}\n"
                            "patch: 32\nbatch: 2\nsteps: 2\nworkers: 0\nthreads: 1\nval_every: 1\n"
                            "val_crop: 32\nval_kinds: [clean]\n")
    done = _child(CORE, str(config), str(train_config), str(tmp_path / "fast.onnx"))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["eval_imports"] == {}  # no module imports scikit-image or SciPy when it loads
    assert result["codes"] == dict.fromkeys(("run", "train", "export", "bench", "info"), 0), done.stderr[-2000:]
    assert result["loaded"] == []
    assert (tmp_path / "out.mp4").stat().st_size > 0
    assert (tmp_path / "run" / "final.safetensors").is_file() and (tmp_path / "fast.onnx").is_file()


def test_eval_without_the_eval_extra_is_one_line(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", count=1)
    done = _child(BLOCK + "from streamer.cli import main\nsys.exit(main(sys.argv[1:]))",
                  "eval", "--clean", str(photos), "--split", "all", "--corruption", "dirt", "--model", "fast")
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip() == f"streamer: error: {MISSING}"
    assert done.stdout == ""


def test_require_eval_names_the_extra_and_passes_other_errors_on(monkeypatch) -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)  # installed here (the dev extra brings it)
    monkeypatch.setitem(sys.modules, "skimage.metrics", None)  # as if scikit-image were not installed
    with pytest.raises(ConfigError) as caught:
        ssim(image, image)
    assert str(caught.value) == MISSING
    with pytest.raises(ConfigError, match=r"eval extra"):  # before any model loads or photo is read
        run_eval(EvalRequest(clean=Path("nowhere"), corruption="dirt", models=("fast",)))
    monkeypatch.setitem(sys.modules, "scipy.ndimage", None)
    from streamer.evaluate.baselines import median8

    with pytest.raises(ConfigError, match=r"eval extra"):
        median8(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ModuleNotFoundError):  # a missing module of another package is not the extra's
        require_eval("streamer_no_such_module")
