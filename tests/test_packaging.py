"""What a pip-installed wheel needs at run time ships in it, and the README's relative paths
(`configs/demo.yaml`, `assets/demo.mp4`) work from a folder that is not the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import streamer.errors
from streamer.config import RunConfig, load_config
from streamer.shipped import PACKAGE, shipped

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = (REPO / "pyproject.toml").read_text()
EXAMPLE_CONFIGS = sorted(p.name for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("train_"))


def test_the_readme_demo_paths_mean_the_shipped_copies_outside_the_repo(tmp_path: Path, monkeypatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="streamer.shipped"):
        assert shipped("assets/demo.mp4") == PACKAGE / "assets" / "demo.mp4"
    assert "using the copy shipped with streamer" in caplog.text  # not silent: it may be a wrong folder
    cfg = load_config(RunConfig, "configs/demo.yaml")  # as `streamer run --config configs/demo.yaml`
    assert cfg.source.url == "assets/demo.mp4" and cfg.model.name == "fast"
    from streamer.sources import open_source

    source = open_source(cfg.source.url)
    try:
        assert source.path == PACKAGE / "assets" / "demo.mp4"
    finally:
        source.close()
    # the working folder's own file wins; other relative paths and absolute ones are left alone
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.yaml").write_text("source: mine.mp4\n")
    assert load_config(RunConfig, "configs/demo.yaml").source.url == "mine.mp4"
    assert shipped("out/demo.mp4") == Path("out/demo.mp4")
    assert shipped("configs/nope.yaml") == Path("configs/nope.yaml")
    # training configs' data/weights/out paths are the checkout's: they never stand in
    assert shipped("configs/train_fast.yaml") == Path("configs/train_fast.yaml")
    assert shipped(tmp_path / "assets" / "demo.mp4") == tmp_path / "assets" / "demo.mp4"


def test_every_example_run_config_is_package_data() -> None:
    """configs/*.yaml but the training ones are listed in pyproject's package-data (a new example
    config left out would run in the repo and fail from a wheel)."""
    listed = sorted(re.findall(r'"configs/([^"*]+\.yaml)"', PYPROJECT))
    assert listed == EXAMPLE_CONFIGS


class _Dist:
    """A non-editable install of this code (its files where this module is)."""

    requires = ['numpy>=1.24', 'openvino>=2025.0; extra == "openvino"', "ray>=2.9; extra == 'cluster'"]

    def read_text(self, name: str) -> str | None:
        return "pip\n" if name == "INSTALLER" else None

    def locate_file(self, name: str) -> Path:
        return PACKAGE.parent / name


def test_a_missing_extra_names_its_requirements_in_a_wheel_install(monkeypatch) -> None:
    import importlib.metadata

    assert streamer.errors.install_extra("openvino") == "pip install -e '.[openvino]' in the streamer folder"
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Dist())
    streamer.errors._wheel_requires.cache_clear()
    try:
        assert streamer.errors.install_extra("openvino") == "pip install 'openvino>=2025.0' (the openvino extra)"
        assert streamer.errors.install_extra("cluster") == "pip install 'ray>=2.9' (the cluster extra)"
    finally:
        streamer.errors._wheel_requires.cache_clear()


def test_the_library_api_is_typed_for_its_users() -> None:
    """PEP 561: without py.typed (the wheel must hold it too) mypy/pyright treat every
    streamer name as Any; and the lazy names must be visible to them, not hidden behind __getattr__."""
    import ast

    import streamer

    assert (PACKAGE / "py.typed").is_file()  # the wheel test checks the wheel holds it
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            typed |= {a.asname or a.name for n in node.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert typed == set(streamer.__all__)
    # a module-level __getattr__ seen by a checker makes any typo (streamer.Clenaer) type-check as Any
    assert not [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    assert set(streamer.__all__) <= set(dir(streamer)) and callable(streamer.Cleaner)


@pytest.mark.slow
def test_the_wheel_holds_what_runs_need_and_no_tests(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="builds the wheel with the venv's setuptools")
    # from a copy (links followed, as in an sdist): a build in the checkout would leave build/ there,
    # whose stale build/lib a later wheel would pack, and could hide a file missing from the tree
    src = tmp_path / "src"
    shutil.copytree(REPO / "streamer", src / "streamer", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-3:]  # a broken build fails, not skips
    (wheel,) = tmp_path.glob("streamer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    need = {"streamer/py.typed", "streamer/assets/demo.mp4", "streamer/calib/manifest.json", "streamer/sinks/view/static/index.html",
            "streamer/sinks/rtsp_serve_gst.py", "streamer/testing/rtsp_server_gst.py",
            *(f"streamer/configs/{c}" for c in EXAMPLE_CONFIGS),
            *(f"streamer/weights/{p.name}" for p in (REPO / "streamer" / "weights").iterdir())}
    assert need <= names, sorted(need - names)
    assert len([n for n in names if n.startswith("streamer/calib/") and n.endswith(".jpg")]) == 32
    assert not [n for n in names if n.startswith("streamer/configs/train_")]
    assert wheel.stat().st_size < 16e6  # 11.3 MB: weights 7.6, calibration frames 2.8, demo clip 0.6
