from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from streamer.commands.run import add_parser
from streamer.config import RunConfig, SinkConfig, TrainConfig, load_config
from streamer.errors import ConfigError

RUN_CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("train_"))
TRAIN_CONFIGS = sorted((REPO / "configs").glob("train_*.yaml"))


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_shipped_run_configs_validate(path: Path) -> None:
    cfg = load_config(RunConfig, path)
    assert all(cam.source.url and cam.sinks for cam in cfg.camera_list())  # `cameras:` sites too


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_shipped_train_configs_validate(path: Path) -> None:
    cfg = load_config(TrainConfig, path)
    assert cfg.steps > 0 and cfg.mix_dirt + cfg.mix_raindrop + cfg.mix_streaks <= 1.0


def test_demo_config_is_what_make_demo_promises() -> None:
    cfg = load_config(RunConfig, REPO / "configs" / "demo.yaml")
    assert Path(cfg.source.url) == Path("assets/demo.mp4") and (REPO / cfg.source.url).exists()
    assert [s.url for s in cfg.sinks] == ["out/demo.mp4", "out/demo_side_by_side.mp4"]
    assert [s.side_by_side for s in cfg.sinks] == [False, True]
    assert cfg.model.name == "fast"
    assert not cfg.backend.int8 or (REPO / cfg.backend.calib).is_dir()  # int8 calibrates on calib/


@pytest.mark.parametrize("text, line", [
    ("source: {url: a.mp4}\nmodle: fast\n", "modle: unknown key (did you mean 'model'?)"),
    ("source: {url: a.mp4}\npreprocess: {tiling: {tiles: 3}}\n",
     "preprocess.tiling.tiles: unknown key (did you mean 'tile'?)"),
    ("source: {url: a.mp4}\nsinks: [{url: x.mp4, side_by_sid: true}]\n",
     "sinks.0.side_by_sid: unknown key (did you mean 'side_by_side'?)"),
    ("source: {url: a.mp4}\nzzzz: 1\n", "zzzz: unknown key"),  # nothing near: no guess
    ("sorce: {url: a.mp4}\n", "sorce: unknown key (did you mean 'source'?)"),  # before "source: required"
])
def test_unknown_key_suggests_the_nearest_valid_one(tmp_path: Path, text: str, line: str) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(RunConfig, path)
    assert str(err.value) == f"{path}: {line}"


@pytest.mark.parametrize("text, where, msg", [
    ("source: {url: a.mp4}\nbogus: 1\n", "bogus", "unknown key"),
    ("source: {url: a.mp4, loop: maybe}\n", "source.loop", "valid boolean"),
    ("source: {url: a.mp4}\nbackend: {kind: tflite}\n", "backend.kind", "torch"),
    ("source: {url: a.mp4}\nsinks: [{url: x.mp4, side_by_sid: true}]\n", "sinks.0.side_by_sid", "unknown key"),
    ("source: {url: a.mp4}\nmax_frames: -1\n", "max_frames", "greater than or equal"),
    ("sinks: [null]\n", "source", "required"),
    ("source: {url: a.mp4}\nbackend: {int8: most}\n", "backend.int8", "'most': use true, false or all"),
    ("source: {url: /dev/video0, fps: -5}\n", "source.fps", "greater than 0"),  # was taken, passed to FFmpeg
    ("source: a.mp4\npreprocess: {resize: 0x0}\n", "preprocess.resize",  # YAML's hex 0: "a valid string"
     r"expected WIDTHxHEIGHT, e.g. 1280x720 \(YAML read this as the number 0; quote it\)"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path: Path, text: str, where: str, msg: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=msg) as err:
        load_config(RunConfig, path)
    line = str(err.value)
    assert line.startswith(f"{path}: {where}: ") and "\n" not in line


def test_a_whole_config_error_reads_as_our_sentence(tmp_path: Path) -> None:
    """A check on the whole config (no key to name) was "FILE: <top>: Value error, give either…";
    `streamer run --config configs/site.yaml --source x.mp4` printed it (session 19)."""
    with pytest.raises(ConfigError) as err:
        load_config(RunConfig, REPO / "configs" / "site.yaml", {"source": {"url": "x.mp4"}})
    line = str(err.value)
    assert line.startswith(f"{REPO / 'configs' / 'site.yaml'}: give either `source:`")
    assert "--source" in line and "<top>" not in line and "Value error" not in line
    path = tmp_path / "int8.yaml"  # a field's own check keeps its key, without pydantic's prefix
    path.write_text("source: {url: a.mp4}\nbackend: {int8: most}\n")
    with pytest.raises(ConfigError, match=r": backend\.int8: 'most': use true") as err:
        load_config(RunConfig, path)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("source:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+ malformed YAML"):
        load_config(RunConfig, path)


def test_a_binary_or_absurdly_nested_config_is_one_line(tmp_path: Path) -> None:
    """A video given as --config (or a Latin-1 file) was a UnicodeDecodeError traceback; 10,000
    nested brackets a RecursionError one."""
    path = tmp_path / "clip.yaml"
    path.write_bytes(b"source: a.mp4\n\xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match=r"clip\.yaml: not a YAML text file \(byte 14 is not UTF-8\)"):
        load_config(RunConfig, path)
    path.write_bytes(b"source: a.mp4\n\x01\x02")  # UTF-8, but not text: was a two-line message
    with pytest.raises(ConfigError, match=r"^[^\n]*clip\.yaml: line 2 malformed YAML \(control character #x0001 "
                                          r"is not allowed; a binary file\?\)$"):
        load_config(RunConfig, path)
    path.write_text("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
    with pytest.raises(ConfigError, match=r"clip\.yaml: malformed YAML \(nested too deeply\)"):
        load_config(RunConfig, path)


def test_a_key_given_twice_is_an_error_not_the_last_one_silently(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a second `sinks:` further down replaced the first."""
    path = tmp_path / "twice.yaml"
    path.write_text("source: a.mp4\nsinks: [out/a.mp4]\nmodel: fast\nsinks: [null]\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml: line 4 malformed YAML \(key 'sinks' given twice\)"):
        load_config(RunConfig, path)
    path.write_text("source: {url: a.mp4, loop: true, loop: false}\n")
    with pytest.raises(ConfigError, match=r"line 1 malformed YAML \(key 'loop' given twice\)"):
        load_config(RunConfig, path)
    # merge keys, and keys written over them, still work
    path.write_text("source:\n  <<: {url: a.mp4, loop: true}\n  loop: false\n")
    assert load_config(RunConfig, path).source.loop is False
    # also when a mapping with a merge key is merged again, higher up, before it is built itself
    path.write_text("cameras:\n  - name: gate\n    source: gate.mp4\n    sinks:\n      - &rec\n"
                    "        <<: {url: 'out/{camera}-loop.mp4', segment_s: 60, keep: 10}\n        keep: 120\n"
                    "sinks:\n  - <<: *rec\n    url: 'out/{camera}.mp4'\n")
    cfg = load_config(RunConfig, path)
    assert cfg.cameras[0].sinks[0].keep == 120 and (cfg.sinks[0].url, cfg.sinks[0].keep) == ("out/{camera}.mp4", 120)
    path.write_text("source: a.mp4\nsinks: [{<<: {url: out/a.mp4, url: out/b.mp4}}]\n")  # merged only
    with pytest.raises(ConfigError, match=r"line 2 malformed YAML \(key 'url' given twice\)"):
        load_config(RunConfig, path)


def test_cli_overrides_merge_into_the_yaml(tmp_path: Path) -> None:
    import argparse

    from streamer.commands.run import overrides

    path = tmp_path / "cam.yaml"
    path.write_text("source: {url: a.mp4, name: gate, loop: true}\nsinks: [out/a.mp4]\n"
                    "backend: {kind: torch, threads: 2}\n")
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["run", "--config", str(path), "--source", "rtsp://h/s", "--sink", "null",
                              "--sink", "out/b.mkv", "--backend", "onnxruntime", "--max-frames", "5"])
    cfg = load_config(RunConfig, path, overrides(args))
    assert cfg.source.url == "rtsp://h/s" and cfg.source.name == "gate" and cfg.source.loop
    assert [s.url for s in cfg.sinks] == ["null", "out/b.mkv"]
    assert cfg.backend.kind == "onnxruntime" and cfg.backend.threads == 2 and cfg.max_frames == 5
    assert cfg.backend.int8 is False
    for flag, want in (["--int8"], True), (["--int8-all"], "all"):  # all: the model's fp32 parts INT8 too
        cfg = load_config(RunConfig, path, overrides(parser.parse_args(["run", "--config", str(path), *flag])))
        assert cfg.backend.int8 == want
    demo = REPO / "configs" / "demo.yaml"  # asks for INT8; --no-int8 compares with fp32
    for flag, want in ([], True), (["--no-int8"], False):
        args = parser.parse_args(["run", "--config", str(demo), "--backend", "onnxruntime", *flag])
        assert load_config(RunConfig, demo, overrides(args)).backend.int8 is want


def test_config_int8_does_not_follow_an_exported_model_or_other_backend(capsys) -> None:
    """docs/jetson.md runs demo.yaml (int8: true) with `--model X.engine --backend tensorrt`: the
    config's int8 is left out with a note; an explicit --int8 keeps it (and its error later)."""
    import argparse

    from streamer.commands.run import _int8_fits, overrides

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    demo = REPO / "configs" / "demo.yaml"
    for extra, want in ((["--model", "engines/f.engine", "--backend", "tensorrt"], False),
                        (["--model", "x.ONNX"], False), (["--backend", "torch"], False),
                        (["--backend", "onnxruntime"], True), (["--model", "fast-drops"], True),
                        (["--model", "x.onnx", "--int8"], True)):
        args = parser.parse_args(["run", "--config", str(demo), *extra])
        cfg = _int8_fits(load_config(RunConfig, demo, overrides(args)), args)
        assert cfg.backend.int8 is want, extra
    assert "demo.yaml's int8: true left out (x.ONNX runs as exported)" in capsys.readouterr().err


def test_short_forms_take_command_line_options(tmp_path: Path) -> None:
    """`source: file` and `model: name` in a run config, with other options given on the command
    line (whose unset ones are None): the short forms stand, as their long forms would."""
    path = tmp_path / "short.yaml"
    path.write_text("source: assets/demo.mp4\nmodel: fast-drops\nbackend: {kind: onnxruntime}\n")
    cfg = load_config(RunConfig, path, {"source": {"url": None}, "model": {"name": None, "arch": "fast"},
                                        "backend": {"kind": "openvino", "int8": None}})
    assert (cfg.source.url, cfg.model.name, cfg.model.arch, cfg.backend.kind) == (
        "assets/demo.mp4", "fast-drops", "fast", "openvino")
    assert load_config(RunConfig, path).model.name == "fast-drops"
    site = tmp_path / "site.yaml"  # a site (cameras:, no source:) takes the short form too
    site.write_text("model: fast-drops\ncameras:\n  - {name: a, source: a.mp4}\n")
    assert load_config(RunConfig, site, {"model": {"name": None, "arch": None}}).model.name == "fast-drops"
    assert load_config(RunConfig, site).model.name == "fast-drops"


@pytest.mark.parametrize("text, msg", [
    ("loss: none\n", "loss: none leaves nothing to train"),
    ("drop_loss: 1\nmask_loss: 1\n", "drop_loss and mask_loss need different masks"),
    ("dirt: {fog: [0, 0]}\n", "unknown dirt range 'fog'"),
    ("dirt: {haze: [0.3, 0.1]}\n", "dirt haze: give \\[min, max\\]"),
])
def test_train_loss_combinations_are_checked(tmp_path: Path, text: str, msg: str) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load_config(TrainConfig, path)


def test_camera_in_sink_paths_is_filled_in_for_every_kind_of_sink() -> None:
    """One camera's sinks, a site camera's own sinks and the site-wide ones alike."""
    one = RunConfig.model_validate({"source": {"url": "a.mp4", "name": "front"}, "sinks": ["out/{camera}.mp4"]})
    assert [s.url for s in one.camera_list()[0].sinks] == ["out/front.mp4"]
    site = RunConfig.model_validate({"cameras": [{"name": "a", "source": "a.mp4", "sinks": ["out/{camera}-own.mkv"]},
                                                 {"name": "b", "source": "b.mp4"}],
                                     "sinks": ["out/{camera}.mp4"]})
    assert [[s.url for s in cam.sinks] for cam in site.camera_list()] == [
        ["out/a-own.mkv", "out/a.mp4"], ["out/b.mp4"]]


def test_fine_tune_weights_by_name_are_the_shipped_file_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    """The README's fine-tune recipe starts from `weights: fast`: it must work outside the repo
    (a pip install has no `streamer/weights/` under the working folder)."""
    from streamer.models import get_spec

    monkeypatch.chdir(tmp_path)
    cfg = load_config(TrainConfig, REPO / "configs" / "train_fast_finetune.yaml")
    assert cfg.weights == get_spec("fast").weights_path and cfg.weights.is_file()
    assert load_config(TrainConfig, None, {"weights": "runs/x.safetensors"}).weights == Path("runs/x.safetensors")
    with pytest.raises(ConfigError, match="unknown model 'fsat'; did you mean 'fast'"):
        load_config(TrainConfig, None, {"weights": "fsat"})


def test_an_unquoted_null_sink_is_the_null_sink(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: a.mp4\nsinks: [null]\n")
    assert [s.url for s in load_config(RunConfig, cfg).sinks] == ["null"]


def test_an_encoder_preset_typo_is_caught_before_the_first_frame() -> None:
    with pytest.raises(ConfigError, match="encoder: preset 'veryfsat': did you mean 'veryfast'"):
        load_config(RunConfig, None, {"source": {"url": "a.mp4"}, "encoder": {"preset": "veryfsat"}})
    other = load_config(RunConfig, None, {"source": {"url": "a.mp4"}, "encoder": {"codec": "h264_nvenc", "preset": "p4"}})
    assert other.encoder.preset == "p4"  # other encoders name their presets their own way


@pytest.mark.parametrize("data, message", [
    ({"source": "rec/a.mp4", "sinks": ["rec/./a.mp4"]},
     r"sink rec/\./a\.mp4: is the source of camera main; writing it would replace the recording"),
    ({"source": "a.mp4", "sinks": ["out/x.mp4", {"url": "out/x.mp4", "side_by_side": True}]},
     r"sink out/x\.mp4: this file is written twice \(by camera main\)"),
    ({"cameras": [{"name": "a", "source": "a.mp4"}, {"name": "b", "source": "b.mp4"}], "sinks": ["out/all.mkv"]},
     r"written twice \(by cameras a and b; e\.g\. put \{camera\} in the name\)"),
    ({"source": "a.mp4", "sinks": ["rtsp://127.0.0.1:8554/a", "rtsp://127.0.0.1:8554/a"]},
     r"sink rtsp://127\.0\.0\.1:8554/a: this stream is published twice \(by camera main\)"),
])
def test_a_file_is_never_both_read_and_written_or_written_twice(data: dict, message: str) -> None:
    """`--source rec.mp4 --sink rec.mp4` ran, exited 0 and left 46 of 50 frames of the recording."""
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, None, data)
    ok = {"cameras": [{"name": "a", "source": "a.mp4"}, {"name": "b", "source": "b.mp4"}],
          "sinks": ["out/{camera}.mkv", "null", "null", "view:0.0.0.0:9000"]}  # one shared view (a dotted host)
    assert len(load_config(RunConfig, None, ok).camera_list()) == 2
    loop = {"source": "rec/a.mp4", "sinks": [{"url": "rec/a.mp4", "segment_s": 60}]}  # a-<time>-<n>.mp4
    assert load_config(RunConfig, None, loop).sinks[0].segment_s == 60


@pytest.mark.parametrize("url, kind", [
    ("null", "null"), ("view", "view"), ("view:9000", "view"), ("view://0.0.0.0:9000", "view"),
    ("views/{camera}.mkv", "file"), ("viewer.mp4", "file"), ("out/cam", "file"),
    ("rtsp-serve://127.0.0.1:8554/x", "rtsp-serve"), ("rtsp://h/x", "rtsp"), ("rtsps://h/x", "rtsp"),
    ("srt://h:9000", "scheme"),
])
def test_one_place_decides_what_a_sink_url_names(url: str, kind: str) -> None:
    """`views/{camera}.mkv` was the live view for the cluster and the site, a file for the sinks."""
    from streamer.config import sink_kind

    assert sink_kind(url) == kind == SinkConfig(url=url).kind


@pytest.mark.parametrize("data, message", [
    ({"source": "a.mp4", "preprocess": {"resize": "1280by720"}}, r"preprocess\.resize: expected WIDTHxHEIGHT"),
    ({"source": {"url": "/dev/video0", "size": "0x720"}}, r"source\.size: width and height must be positive"),
])
def test_sizes_are_checked_when_the_config_is_read(data: dict, message: str) -> None:
    """They were checked when the camera opened, in an error that named neither file nor key."""
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, None, data)
    usb = load_config(RunConfig, None, {"source": {"url": "/dev/video0", "size": "1280×720"}})
    assert usb.source.size == "1280x720"  # as FFmpeg's video_size takes it


@pytest.mark.parametrize("name", ["../../etc", "x/y", ".hidden", "", "a\\b"])
def test_a_camera_name_cannot_leave_the_output_folder(name: str) -> None:
    """`name: ../../etc` with `out/{camera}.mp4` wrote /tmp/etc.mp4; `x/y` made out/x/y.mp4."""
    with pytest.raises(ConfigError, match=r"cameras\.0\.name: .*a camera name goes into file names"):
        load_config(RunConfig, None, {"cameras": [{"name": name, "source": "a.mp4"}], "sinks": ["out/{camera}.mp4"]})
    with pytest.raises(ConfigError, match=r"source\.name: .*may not be empty, hold / or"):
        load_config(RunConfig, None, {"source": {"url": "a.mp4", "name": name}})
    assert load_config(RunConfig, None, {"cameras": [{"name": "Gate north 2.b", "source": "a.mp4"}]})
