"""RTSP server process for the ``rtsp-serve://`` sink: raw RGB frames on stdin -> H.264 over RTSP.

Runs under the *system* python (Debian's python3-gi lives there, not in the venv), so it must not
import streamer or numpy. ``streamer.sinks.rtsp_serve`` starts it; nothing else should.

    stdin   frames of WIDTH*HEIGHT*3 bytes (RGB24), back to back; EOF ends the server
    stdout  one line: ``READY <port>`` once listening, or ``ERROR <one-line reason>`` (exit 2)
    env     STREAMER_RTSP_USER / STREAMER_RTSP_PASSWORD: when the password is set, clients must
            authenticate (RTSP basic auth) and nobody else may connect

One shared media per mount: every client gets the same encoder output, and the encoder runs only
while at least one client is connected (frames arriving with no client are discarded). x264enc
tune=zerolatency: no B-frames, no lookahead, so a frame leaves as soon as it is encoded.
"""

import argparse
import os
import sys
import threading

APT = ("python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
       "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly")
ELEMENTS = {"appsrc": "gstreamer1.0-plugins-base", "videoconvert": "gstreamer1.0-plugins-base",
            "x264enc": "gstreamer1.0-plugins-ugly", "rtph264pay": "gstreamer1.0-plugins-good"}


def fail(message):
    print("ERROR " + message.replace("\n", " "), flush=True)
    sys.exit(2)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--path", default="/clean")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--preset", default="veryfast", help="x264 speed preset")
    p.add_argument("--quantizer", type=int, default=23, help="x264 constant quality (like crf)")
    p.add_argument("--keyint", type=int, default=25, help="frames between keyframes: join delay")
    p.add_argument("--check", action="store_true", help="only check the GStreamer install")
    return p.parse_args(argv)


def load_gstreamer():
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        fail(f"GStreamer RTSP server bindings missing for {sys.executable} ({exc}); "
             f"install them: sudo apt install {APT}")
    Gst.init(None)
    for element, package in ELEMENTS.items():
        if Gst.ElementFactory.find(element) is None:
            fail(f"GStreamer element {element} missing; install it: sudo apt install {package}")
    return GLib, Gst, GstRtspServer


def launch_line(args):
    num, den = int(round(args.fps * 1000)), 1000
    caps = f"video/x-raw,format=RGB,width={args.width},height={args.height},framerate={num}/{den}"
    return (f"( appsrc name=src is-live=true do-timestamp=true format=time block=false caps={caps} "
            "! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 "
            "! videoconvert ! video/x-raw,format=I420 "
            f"! x264enc tune=zerolatency speed-preset={args.preset} pass=qual quantizer={args.quantizer} "
            f"key-int-max={args.keyint} bframes=0 "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )")


class Feeder:
    """Reads frames from stdin and pushes each to the appsrc of every prepared media."""

    def __init__(self, Gst, frame_bytes):
        self.Gst = Gst
        self.frame_bytes = frame_bytes
        self.lock = threading.Lock()
        self.sources = []

    def on_media_configure(self, _factory, media):
        src = media.get_element().get_by_name("src")
        with self.lock:
            self.sources.append(src)
        media.connect("unprepared", self.on_unprepared, src)

    def on_unprepared(self, _media, src):
        with self.lock:
            if src in self.sources:
                self.sources.remove(src)

    def run(self, stream, on_eof):
        buf = bytearray(self.frame_bytes)
        view = memoryview(buf)
        while True:
            got = 0
            while got < self.frame_bytes:
                n = stream.readinto(view[got:])
                if not n:
                    with self.lock:
                        for src in self.sources:
                            src.emit("end-of-stream")
                    on_eof()
                    return
                got += n
            with self.lock:
                sources = list(self.sources)
            for src in sources:
                src.emit("push-buffer", self.Gst.Buffer.new_wrapped(bytes(buf)))


def add_auth(GstRtspServer, server, factory, user, password):
    """RTSP basic auth: only ``user`` with ``password`` may see or open the mount."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", user)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role(user, "media.factory.access", True)
    permissions.add_permission_for_role(user, "media.factory.construct", True)
    factory.set_permissions(permissions)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    GLib, Gst, GstRtspServer = load_gstreamer()
    if args.check:
        print("READY 0", flush=True)
        return 0
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args))
    factory.set_shared(True)
    feeder = Feeder(Gst, args.width * args.height * 3)
    factory.connect("media-configure", feeder.on_media_configure)
    password = os.environ.get("STREAMER_RTSP_PASSWORD")
    if password:
        add_auth(GstRtspServer, server, factory, os.environ.get("STREAMER_RTSP_USER", "streamer"), password)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        fail(f"cannot listen on {args.host}:{args.port} (in use or not an address of this host); "
             "choose another port")
    print(f"READY {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    reader = threading.Thread(target=feeder.run, args=(sys.stdin.buffer, lambda: GLib.idle_add(loop.quit)),
                              daemon=True)
    reader.start()
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
