"""`streamer bench`: full pipeline vs passthrough fps and per-stage ms, as JSON or a short table."""

from __future__ import annotations

import argparse
import json

from streamer.commands import ARCH_HELP, add_backend_args, add_int8_args, at_least


def _engine(report: dict) -> str:
    """The header's "fast on openvino/cpu INT8": INT8 and fp32 runs differ 1.5-2x, so must it."""
    precision = {True: " INT8", "all": " INT8 (all layers)"}.get(report.get("int8"), "")
    exported = report.get("exported") or {}
    if exported.get("precision"):  # an exported file runs at the precision it was exported with
        precision = f" {exported['precision'].upper()} ({exported['format']} export)"
    return f"{report['model']} on {report['backend']}/{report['device']}{precision}"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure fps and per-stage time of the pipeline")
    p.add_argument("--model", default="fast", help="registered model name or a weights/ONNX/engine path")
    p.add_argument("--arch", help=ARCH_HELP)
    add_backend_args(p, "torch")
    p.add_argument("--size", default="1280x720", help="frame size WIDTHxHEIGHT")
    p.add_argument("--frames", type=at_least(2), default=60, help="frames per measured run")
    p.add_argument("--threads", type=at_least(0), default=0, help="network CPU threads (0 = engine default)")
    p.add_argument("--inflight", type=at_least(1), default=2,
                   help="openvino, torch on cuda, tensorrt: frames in flight (default 2, like backend.inflight)")
    p.add_argument("--preset", help="x264 preset of both runs (default: the encoder config's, veryfast)")
    add_int8_args(p)
    p.add_argument("--clip", help="video to benchmark on (default: the bundled demo clip)")
    p.add_argument("--json", action="store_true", help="print the full JSON report")
    p.add_argument("--streams", help="N cameras in one site, with and without batching: N (= 1,2,4..N) "
                   "or a list like 1,2,4,8; --frames is then per camera")
    p.add_argument("--max-batch", type=at_least(1), default=8, help="--streams: most frames per network call")
    p.add_argument("--batch-timeout-ms", type=float, default=20.0, help="--streams: batch wait after the first frame")
    p.add_argument("--soak", action="store_true",
                   help="long run instead: loop the clip (or --config's source) for --frames frames "
                        "and report RSS growth after --warmup (see docs/reliability.md)")
    p.add_argument("--config", help="--soak: a run config to soak (its source should loop)")
    p.add_argument("--warmup", type=at_least(0), help="--soak: frames before the RSS baseline (default frames/3)")
    p.add_argument("--latency", action="store_true",
                   help="also measure capture->display latency of the web view on loopback "
                        "(frames pushed at 30 fps, read back over the page's WebSocket)")
    p.set_defaults(func=run)


def _refuse_unused(args: argparse.Namespace) -> None:
    """Options a mode would drop are refused, not ignored: a result must be what it says."""
    from streamer.errors import ConfigError

    mode = "--streams" if args.streams else "--soak" if args.soak else None
    if args.streams and args.soak:
        raise ConfigError("--streams and --soak are separate benchmarks; give one")
    unused = {"--preset": args.preset is not None and mode is not None,  # their sinks encode nothing
              "--latency": args.latency and mode is not None,
              "--config": args.config is not None and not args.soak,
              "--warmup": args.warmup is not None and not args.soak}
    for flag, dropped in unused.items():
        if dropped:
            raise ConfigError(f"{flag}: has no meaning for {mode or 'the single-stream bench'}; drop it")


def run_soak(args: argparse.Namespace) -> int:
    from streamer.backends import resolve_device
    from streamer.bench import DEMO_CLIP
    from streamer.config import RunConfig, load_config
    from streamer.soak import soak

    base = {} if args.config else {
        "source": {"url": args.clip or str(DEMO_CLIP), "loop": True, "name": "soak"},
        "sinks": ["null"], "preprocess": {"resize": args.size}, "stats_every_s": 0,
        "backend": {"kind": args.backend, "device": args.device, "threads": args.threads,
                    "int8": args.int8, "inflight": args.inflight},
        "model": {"name": args.model, "arch": args.arch}}
    cfg = load_config(RunConfig, args.config, {**base, "max_frames": args.frames})
    report = soak(cfg, warmup_frames=args.warmup if args.warmup is not None else args.frames // 3)
    report = {"model": cfg.model.name, "backend": cfg.backend.kind,
              "device": resolve_device(cfg.backend.device, cfg.backend.kind),
              "int8": cfg.backend.int8} | report  # which run this was, in the record
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rss = report["rss_mb"]
    print(f"soak: {report['frames']} frames in {report['seconds']} s ({report['fps']} fps); RSS "
          f"{rss['warm']} MB after {report['warmup_frames']} warm-up frames, {rss['end']} MB at the end "
          f"({report['growth_pct']:+.2f}%), peak {rss['peak']} MB")
    return 0


def run_streams(args: argparse.Namespace) -> int:
    from streamer.bench import bench_streams, stream_counts
    from streamer.preprocess.resize import parse_size

    report = bench_streams(args.model, args.backend, args.device, streams=stream_counts(args.streams),
                           size=parse_size(args.size), frames=args.frames, threads=args.threads,
                           arch=args.arch, clip=args.clip, max_batch=args.max_batch,
                           timeout_ms=args.batch_timeout_ms, int8=args.int8, inflight=args.inflight)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{_engine(report)}, {report['clip']['size']}, "
          f"{report['clip']['frames']} frames per camera, {report['host']['cpu_count']} CPUs")
    print(f"{'streams':>7} {'batch':>5} {'total fps':>9} {'per cam':>8} {'lat p50':>8} {'lat p95':>8} {'frames/call':>11}")
    for r in report["streams"]["results"]:
        print(f"{r['streams']:>7} {r['max_batch']:>5} {r['aggregate_fps']:>9.1f} {r['per_camera_fps_min']:>8.1f} "
              f"{r['latency_ms']['p50']:>6.0f}ms {r['latency_ms']['p95']:>6.0f}ms {r['frames_per_call']:>11.2f}")
    return 0


def run(args: argparse.Namespace) -> int:
    from streamer.bench import bench
    from streamer.preprocess.resize import parse_size

    _refuse_unused(args)
    if args.streams:
        return run_streams(args)
    if args.soak:
        return run_soak(args)
    size = parse_size(args.size)
    report = bench(args.model, args.backend, args.device, size=size,
                   frames=args.frames, threads=args.threads, arch=args.arch, clip=args.clip,
                   int8=args.int8, preset=args.preset, inflight=args.inflight)
    if args.latency:
        from streamer.sinks.view.latency import measure_view_latency

        report["view_latency"] = measure_view_latency(frames=max(args.frames, 60), width=size[0],
                                                      height=size[1])
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    isa = report["host"].get("cpu_isa") or ["?"]
    print(f"{_engine(report)}, {report['clip']['size']}, "
          f"{report['clip']['frames']} frames, {report['host']['cpu_count']} CPUs ({isa[0]})")
    for name, r in report["runs"].items():
        stages = "  ".join(f"{k} {v:.1f}" for k, v in r["stage_ms"].items())
        print(f"{name:<12} {r['fps']:7.2f} fps   CPU {r['cpu_ms_per_frame']:.1f} ms/frame   wall ms/frame: {stages}")
    if "view_latency" in report:
        lat = report["view_latency"]
        print(f"view latency (capture->browser, {lat['transport']}): median {lat['latency_ms_median']} ms, "
              f"p95 {lat['latency_ms_p95']} ms")
    return 0
