"""Live web view sink (`--sink view`): a grid of cameras, before/after, live stats, metrics, health.

Wiring (for ``open_sink``)::

    ViewSink(stats: RunStats | None = None, host: str = "127.0.0.1", port: int = 8080,
             token: str | None = None, jpeg_quality: int = 80, title: str = "streamer")

- ``stats``: the run's ``RunStats``; ``/metrics``, ``/healthz`` and the stats panel read it. The
  pipeline keeps updating it (``on_up(cam, True)`` once a camera delivers, or ``/healthz`` says 503).
- ``token``: falls back to ``$STREAMER_TOKEN``; binding a non-loopback host without one raises
  ``ConfigError`` in the constructor. The server is listening when the constructor returns
  (``port=0`` picks a free port; see ``.port`` / ``.url``); ``close()`` stops it.
- Frames: ``image`` is streamed as "after", ``original`` (when set) as "before"; ``source`` names
  the camera tile; ``captured_s`` gives the capture->display latency shown per camera.

Transport is MJPEG over HTTP; see docs/live-view.md for why not WebRTC yet.
"""

from streamer.sinks.view.sink import ViewSink

__all__ = ["ViewSink"]
