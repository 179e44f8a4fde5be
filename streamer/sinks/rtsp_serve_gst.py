"""RTSP server process for ``rtsp-serve://`` sinks: one per host:port, a mount per path.

Runs under the *system* python (Debian's python3-gi lives there, not in the venv), so it must not
import streamer or numpy. ``streamer.sinks.rtsp_serve`` starts it; nothing else should.

    stdin   commands, each a line, a frame's line followed by its bytes:
              MOUNT ID PATH WIDTH HEIGHT FPS PRESET QUANTIZER KEYINT   serve PATH from now on
              FRAME ID                then WIDTH*HEIGHT*3 bytes (RGB24) for that mount
              END ID                  end that mount's stream (clients see EOS) and unmount it
            EOF ends the server
    stdout  ``READY <port>`` once listening, or ``ERROR <one-line reason>`` (exit 2); then
            ``MOUNTED ID`` once each mount is served
    env     STREAMER_RTSP_USER / STREAMER_RTSP_PASSWORD: when the password is set, clients must
            authenticate (RTSP basic auth) and nobody else may connect

Mounts can be added while serving: a site's cameras share one port, each camera's mount added
at its first frame (its size). One shared media per mount: every client gets the same encoder
output, and the encoder runs only while at least one client is connected (frames arriving with
no client are discarded). x264enc tune=zerolatency: no B-frames, no lookahead, so a frame leaves
as soon as it is encoded.
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


def launch_line(width, height, fps, preset, quantizer, keyint):
    num, den = int(round(fps * 1000)), 1000
    caps = f"video/x-raw,format=RGB,width={width},height={height},framerate={num}/{den}"
    return (f"( appsrc name=src is-live=true do-timestamp=true format=time block=false caps={caps} "
            "! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 "
            "! videoconvert ! video/x-raw,format=I420 "
            f"! x264enc tune=zerolatency speed-preset={preset} pass=qual quantizer={quantizer} "
            f"key-int-max={keyint} bframes=0 "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )")


class Mount:
    """One path: pushes each frame to the appsrc of every prepared media (clients share one)."""

    def __init__(self, Gst, path, frame_bytes):
        self.Gst, self.path, self.frame_bytes = Gst, path, frame_bytes
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

    def push(self, data):
        with self.lock:
            sources = list(self.sources)
        for src in sources:
            src.emit("push-buffer", self.Gst.Buffer.new_wrapped(data))

    def end(self):
        with self.lock:
            for src in self.sources:
                src.emit("end-of-stream")


class Server:
    """The listening server and its mounts, fed from the command stream."""

    def __init__(self, Gst, GstRtspServer, args):
        self.Gst, self.GstRtspServer = Gst, GstRtspServer
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(args.host)
        self.server.set_service(str(args.port))
        self.user = os.environ.get("STREAMER_RTSP_USER", "streamer")
        self.password = os.environ.get("STREAMER_RTSP_PASSWORD")
        if self.password:
            auth = GstRtspServer.RTSPAuth()
            token = GstRtspServer.RTSPToken()
            token.set_string("media.factory.role", self.user)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(self.user, self.password), token)
            self.server.set_auth(auth)
        self.mounts = {}

    def add(self, mount_id, path, width, height, fps, preset, quantizer, keyint):
        factory = self.GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(int(width), int(height), float(fps), preset, int(quantizer), int(keyint)))
        factory.set_shared(True)
        mount = Mount(self.Gst, path, int(width) * int(height) * 3)
        factory.connect("media-configure", mount.on_media_configure)
        if self.password:  # RTSP basic auth: only the user with the password may see or open it
            permissions = self.GstRtspServer.RTSPPermissions()
            permissions.add_permission_for_role(self.user, "media.factory.access", True)
            permissions.add_permission_for_role(self.user, "media.factory.construct", True)
            factory.set_permissions(permissions)
        self.server.get_mount_points().add_factory(path, factory)
        self.mounts[mount_id] = mount

    def remove(self, mount_id):
        mount = self.mounts.pop(mount_id, None)
        if mount is not None:
            self.server.get_mount_points().remove_factory(mount.path)
            mount.end()

    def run(self, stream, on_eof):
        """Commands until EOF (or a line it cannot read: the parent is gone or broken)."""
        try:
            while True:
                line = stream.readline()
                words = line.decode(errors="replace").split()
                if not words:
                    break
                command, mount_id = words[0], words[1] if len(words) > 1 else ""
                if command == "FRAME":
                    mount = self.mounts.get(mount_id)
                    if mount is None:
                        break
                    data = stream.read(mount.frame_bytes)
                    if len(data) < mount.frame_bytes:
                        break
                    mount.push(data)
                elif command == "MOUNT" and len(words) == 9:
                    self.add(*words[1:])
                    print(f"MOUNTED {mount_id}", flush=True)
                elif command == "END":
                    self.remove(mount_id)
                else:
                    print(f"rtsp_serve_gst: unknown command {line[:80]!r}", file=sys.stderr, flush=True)
                    break
        finally:
            for mount in self.mounts.values():
                mount.end()
            on_eof()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    GLib, Gst, GstRtspServer = load_gstreamer()
    if args.check:
        print("READY 0", flush=True)
        return 0
    server = Server(Gst, GstRtspServer, args)
    if server.server.attach(None) == 0:
        fail(f"cannot listen on {args.host}:{args.port} (in use or not an address of this host); "
             "choose another port")
    print(f"READY {server.server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    reader = threading.Thread(target=server.run, args=(sys.stdin.buffer, lambda: GLib.idle_add(loop.quit)),
                              daemon=True)
    reader.start()
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
