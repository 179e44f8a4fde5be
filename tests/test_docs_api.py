"""docs/api.md's examples run as written (paths pointed at a temp folder), so the page cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import read_video, skip_without_openvino

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)


def test_the_cleaner_example_runs(capsys) -> None:
    skip_without_openvino()
    exec(compile(BLOCKS[0], "docs/api.md#cleaner", "exec"), {})
    assert capsys.readouterr().out.startswith("(720, 1280, 3) {'preprocess'")


def test_the_run_example_runs(tmp_path: Path, capsys) -> None:
    skip_without_openvino()
    code = BLOCKS[1].replace("assets/demo.mp4", str(REPO / "assets" / "demo.mp4"))
    code = code.replace('"out/', f'"{tmp_path}/').replace('"configs/', f'"{REPO}/configs/')
    exec(compile(code, "docs/api.md#run", "exec"), {})
    frames = int(capsys.readouterr().out.split()[0])
    assert frames == 100 and len(read_video(tmp_path / "demo.mp4")[0]) == 100
    assert len(list(tmp_path.glob("loop-*.mp4"))) == 1  # a 10 s clip is one 60 s segment


def test_run_checks_a_dict_or_path_as_the_cli_does(tmp_path: Path) -> None:
    """A typo in a dict is the CLI's one line (not pydantic's multi-line error); a YAML path is read."""
    import streamer
    from streamer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^cfg: modle: unknown key \(did you mean 'model'\?\)"):
        streamer.run({"source": "assets/demo.mp4", "modle": "fast"})
    # an empty or None value is checked too, as in a YAML file (not dropped as "not given")
    with pytest.raises(ConfigError, match=r"^cfg: modle: unknown key"):
        streamer.run({"source": "assets/demo.mp4", "sinks": ["null"], "modle": {}})
    with pytest.raises(ConfigError, match=r"^cfg: source.timeout_s: Input should be a valid number"):
        streamer.run({"source": {"url": "assets/demo.mp4", "timeout_s": None}, "sinks": ["null"]})
    (tmp_path / "bad.yaml").write_text("sorce: a.mp4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: sorce: unknown key"):
        streamer.run(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="run takes a RunConfig, a dict or a YAML path, not list"):
        streamer.run(["assets/demo.mp4"])
