"""A loopback RTSP server for the live-mode tests (run with the SYSTEM python, which has ``gi``).

Usage::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 cam_a=/path/a.mp4 cam_b=/path/b.mp4

serves ``rtsp://127.0.0.1:8554/cam_a`` and ``.../cam_b``. Each file must be an
MP4 holding one H.264 video stream; it is sent as is (``filesrc ! qtdemux !
[h264parse !] rtph264pay``, no encoder needed) in real time, from the start for
every new client. Prints ``READY <port>`` on stdout once listening, then serves
until killed. Needs the Debian packages ``gir1.2-gst-rtsp-server-1.0``,
``gstreamer1.0-plugins-base``, ``gstreamer1.0-plugins-good`` and ``python3-gi``.
Exit code 3 when they are missing (the message names them).
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    """Parse ``NAME=FILE`` mounts and serve them until killed; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mounts", nargs="+", metavar="NAME=FILE")
    ap.add_argument("--port", type=int, default=8554)
    args = ap.parse_args()
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        print(f"rtsp_server: GStreamer RTSP server unavailable ({exc}); install python3-gi "
              "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good", file=sys.stderr)
        return 3
    Gst.init(None)
    missing = [e for e in ("filesrc", "qtdemux", "rtph264pay") if Gst.ElementFactory.find(e) is None]
    if missing:
        print(f"rtsp_server: GStreamer elements missing: {', '.join(missing)} "
              "(install gstreamer1.0-plugins-base gstreamer1.0-plugins-good)", file=sys.stderr)
        return 3
    parse = "h264parse ! " if Gst.ElementFactory.find("h264parse") is not None else ""
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for m in args.mounts:
        name, _, path = m.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( filesrc location="{path}" ! qtdemux ! {parse}rtph264pay name=pay0 pt=96 config-interval=1 )'
        )
        factory.set_shared(False)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 3
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
