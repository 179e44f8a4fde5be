"""Split a site into camera groups, one per Ray actor; each group is a complete ``RunConfig``."""

from __future__ import annotations

from streamer.config import RunConfig
from streamer.errors import ConfigError


def plan_groups(cfg: RunConfig) -> list[RunConfig]:
    """Cameras in config order, ``cluster.cameras_per_actor`` per group (batched together there).

    Sinks are resolved per camera first (``{camera}`` filled in), so a group needs nothing from
    the others. The web view is one page per process, so it is refused here: the head serves the
    merged ``/metrics`` instead, and each camera can push to RTSP or write files.
    """
    cams = cfg.camera_list()
    for cam in cams:
        for sink in cam.sinks:
            if sink.kind == "view":
                raise ConfigError(f"sink {sink.url!r} (camera {cam.name}): the live view runs per process "
                                  "and is not served in cluster mode; use files or rtsp:// sinks "
                                  "(e.g. --sink 'out/{camera}.mkv') and the head's /metrics")
    size = cfg.cluster.cameras_per_actor
    base = cfg.model_dump(exclude={"source", "cameras", "sinks"})
    return [RunConfig.model_validate({**base, "cameras": [c.model_dump() for c in cams[i:i + size]]})
            for i in range(0, len(cams), size)]
