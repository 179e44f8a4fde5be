"""`streamer cluster --config configs/site.yaml [--address ADDR]`: the site's cameras on Ray."""

from __future__ import annotations

import argparse

from streamer.commands import ARCH_HELP, add_backend_args, add_int8_args, at_least, stop_signals


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="spread a site's cameras over a Ray cluster (needs the cluster extra)")
    p.add_argument("--config", required=True, help="site YAML with cameras:, e.g. configs/site.yaml")
    p.add_argument("--address", help="Ray cluster address (e.g. 10.0.0.5:6379 or auto); "
                   "left out: an embedded local Ray")
    p.add_argument("--metrics-port", type=int, help="override cluster.metrics_port (0 = any free port)")
    p.add_argument("--cameras-per-actor", type=at_least(1), help="override cluster.cameras_per_actor")
    p.add_argument("--num-gpus", type=float, help="override cluster.num_gpus per actor")
    p.add_argument("--sink", action="append", help="override the site-wide sinks (repeatable): "
                   "out/{camera}.mkv, rtsp://…/{camera}, null (the web view is per process: not here)")
    p.add_argument("--model", help="registered model name or a weights/ONNX/engine path")
    p.add_argument("--arch", help=ARCH_HELP)
    add_backend_args(p)
    p.add_argument("--threads", type=at_least(0), help="network CPU threads per actor (0 = all cores)")
    add_int8_args(p, default=None)
    p.add_argument("--max-frames", type=at_least(1), help="stop each camera after this many frames")
    p.set_defaults(func=run, source=None)  # no --source: a site's cameras each name their own


def run(args: argparse.Namespace) -> int:
    from streamer.cluster.supervisor import ClusterRunner, run_cluster
    from streamer.commands.run import overrides  # the same options as `streamer run`, the same way
    from streamer.config import RunConfig, load_config

    cfg = load_config(RunConfig, args.config, overrides(args) | {
        "cluster": {"metrics_port": args.metrics_port, "cameras_per_actor": args.cameras_per_actor,
                    "num_gpus": args.num_gpus},
    })
    last: dict[int, str] = {}

    def report(runner: ClusterRunner) -> None:  # one line per group when its placement changes
        for g in runner.groups:
            line = f"group {g.index} [{', '.join(g.cameras)}]: {g.state} on {g.host or '?'} ({g.node[:8] or '-'})"
            if last.get(g.index) != line:
                last[g.index] = line
                print(line, flush=True)
        if runner.server is not None and -1 not in last:
            last[-1] = runner.server.url
            print(f"metrics: {runner.server.url}", flush=True)

    with stop_signals():
        result = run_cluster(cfg, args.address, on_poll=report)
        return _summary(result)


def _summary(result) -> int:
    note = " (interrupted)" if result.interrupted else ""
    cams, groups = len(result.cameras), len(result.groups)
    print(f"{cams} camera{'s' * (cams != 1)} in {groups} group{'s' * (groups != 1)}, {result.seconds:.1f} s{note}")
    failed = 0
    for name, cam in result.cameras.items():
        error = cam.get("error") or ""
        failed += bool(error)
        print(f"  {name}: out {cam.get('frames_out', 0)}, dropped {cam.get('dropped', 0)}, "
              f"group {cam['group']} on {cam['node'][:8] or '-'}, {('FAILED: ' + error) if error else cam['state']}")
    return 1 if failed else 0
