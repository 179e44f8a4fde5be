"""The command line's help: the first thing a new user runs must never crash.

argparse %-formats every help string, so a bare "95 %" in one subcommand's help broke
`streamer --help` for all of them (session 18); this runs every page."""

from __future__ import annotations

import subprocess
import sys

import pytest

import streamer

from streamer.cli import COMMANDS, main


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    out = _help(["--help"], capsys)
    assert out.startswith("usage: streamer")
    for name in COMMANDS:
        assert name.replace("_", "-") in out


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(name, capsys):
    command = name.replace("_", "-")
    assert _help([command, "--help"], capsys).startswith(f"usage: streamer {command}")


def test_version(capsys):
    assert _help(["--version"], capsys).strip() == f"streamer {streamer.__version__}"


def test_version_is_pyproject_s_or_says_it_is_unknown(monkeypatch):
    """One version, pyproject's, read from the installed metadata; a never-installed tree says so."""
    import importlib.metadata

    assert streamer.__version__ == importlib.metadata.version("streamer")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    streamer._version.cache_clear()
    try:
        assert streamer.__version__ == "0+unknown"
    finally:
        streamer._version.cache_clear()


def test_python_dash_m_runs_the_cli():
    """`python -m streamer` where pip's scripts folder is not on PATH (JetPack images)."""
    done = subprocess.run([sys.executable, "-m", "streamer", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"streamer {streamer.__version__}"


def test_debug_after_the_command_shows_the_traceback(tmp_path, capsys):
    """Errors say "--debug shows the traceback"; users add it at the end of the line they ran."""
    from streamer.errors import ConfigError

    missing = str(tmp_path / "nope.yaml")
    assert main(["run", "--config", missing]) == 1
    assert "cannot read config" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="cannot read config"):
        main(["run", "--config", missing, "--debug"])
    with pytest.raises(SystemExit):
        main(["run", "--config", missing, "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize("argv, line", [
    (["synth", "x", "-o", "y", "--corruption", "dirt", "--limit", "-1"], "argument --limit: must be at least 1, got -1"),
    (["synth", "x", "-o", "y", "--corruption", "dirt", "--frame-px", "-5"], "argument --frame-px: must be at least 0, got -5"),
    (["run", "--config", "c.yaml", "--max-frames", "-5"], "argument --max-frames: must be at least 1, got -5"),
    (["eval", "--clean", "x", "--corruption", "dirt", "--limit", "0"], "argument --limit: must be at least 1, got 0"),
    (["bench", "--threads", "two"], "argument --threads: expected a whole number, got 'two'"),
])
def test_counts_out_of_range_are_refused_by_the_flag(argv, line, capsys) -> None:
    """`--limit -1` processed all photos but one (a slice), `--limit 0` wrote nothing and said so,
    `--max-frames -5` was blamed on the config file: the flag itself says what is wrong now."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and line in capsys.readouterr().err
