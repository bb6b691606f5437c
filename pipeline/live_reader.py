"""Live sources for ``mtmc live``: parse them, and read each in its own thread keeping only the newest frame.

A source is an ``rtsp://``, ``rtsps://``, ``rtmp://``, ``http(s)://``, ``udp://``,
``tcp://`` or ``srt://`` URL, a video file (played in real time, as a camera
would deliver it), or either of them as ``name=SOURCE`` to choose the camera id.

:class:`LiveReader` is one daemon thread per stream. It opens the stream with
PyAV (RTSP over TCP, open and read timeouts), decodes every frame and puts it
in a one-frame slot: a frame the consumer has not taken when the next one is
decoded is dropped and counted, so nothing queues up and latency stays bounded.
When opening or reading fails, or the stream ends, it reconnects after an
exponential back-off with jitter (``backoff_initial_s`` doubling up to
``backoff_max_s``, ± ``backoff_jitter``). The consumer runs the watchdog
(:meth:`LiveReader.check_stall`): a stream that delivered no frame for
``stall_s`` seconds is declared down even while the socket is still open (a
frozen server); the blocked read then times out after ``read_timeout_s`` and
the reader reconnects. State changes are reported through a callback as
``stream_up`` / ``stream_down`` events. URLs are only ever shown masked
(:func:`mask_text`, also inside error messages).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import av

from pipeline.config import LiveConfig
from pipeline.errors import InputError, first_line
from pipeline.redact import mask_text
from pipeline.sources import sanitize_camera_id, unique_camera_ids
from pipeline.types import Frame

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
_NAMED = re.compile(r"^([^:/=]*)=(.*)$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class LiveSource:
    """One live input.

    Attributes:
        camera_id: sanitised camera id (the ``name=`` given, else derived from the
            URL path or the file stem).
        url: the URL or file path as given. May hold credentials: never print it,
            print :attr:`display`.
        is_file: a local video file (played in real time) rather than a URL.
    """

    camera_id: str
    url: str
    is_file: bool

    @property
    def display(self) -> str:
        """The source with ``user:password@`` masked, safe for logs, events and JSON."""
        return mask_text(self.url)


def _id_from_url(url: str) -> str:
    rest = url.split("://", 1)[1].rsplit("@", 1)[-1]  # drop scheme and credentials
    host, _, path = rest.partition("/")
    path = unquote(path.split("?", 1)[0]).strip("/")  # "/%E5%8C%97" is camera "北"
    return sanitize_camera_id(path or host.split(":", 1)[0], repr(mask_text(url)),
                              "name the camera as NAME=URL")


def parse_source(item: str) -> LiveSource:
    """Parse one command-line or config source (``URL``, ``FILE``, ``name=URL`` or ``name=FILE``).

    A file is not checked here (see :func:`pipeline.live.run_live`); a URL is
    only checked for a known scheme.

    The camera id is the name given, else the URL's path (percent-decoded) or
    host, else the file stem, made safe by :func:`~pipeline.sources.sanitize_camera_id`
    (letters of any script kept: ``北门=rtsp://…`` is camera ``北门``).

    Raises:
        InputError: an empty item or name, an unknown URL scheme, or no camera
            id can be derived; the message shows the item with credentials
            masked and says what to do.
    """
    raw = item.strip()
    name: str | None = None
    m = _NAMED.match(raw)
    if m and not Path(raw).exists():
        name, raw = m.group(1).strip(), m.group(2).strip()
        if not name or not raw:
            raise InputError(f"invalid source {mask_text(item)!r}: expected name=URL or name=FILE")
    if not raw:
        raise InputError("empty source: pass an rtsp:// or http:// URL, a video file, or name=URL")
    sm = _SCHEME.match(raw)
    if sm:
        scheme = sm.group(1).lower()
        if scheme == "file":
            raw, sm = raw[len("file://"):], None
        elif scheme not in URL_SCHEMES:
            raise InputError(f"source {mask_text(raw)!r}: unsupported scheme {scheme!r} "
                             f"(use one of {', '.join(URL_SCHEMES)}, or a video file)")
    if name:
        cid = sanitize_camera_id(name, f"the name {name!r} of {mask_text(item)!r}", "use letters or digits in it")
    elif sm:
        cid = _id_from_url(raw)
    else:
        cid = sanitize_camera_id(Path(raw).stem, raw, "rename the file or name it as NAME=FILE")
    return LiveSource(cid, raw, not sm)


def parse_sources(items: list[str]) -> list[LiveSource]:
    """Parse many sources (:func:`parse_source`); a repeated camera id gets ``_2``, ``_3`` … with a warning.

    (See :func:`pipeline.sources.unique_camera_ids`.)

    Raises:
        InputError: no source, or an invalid one (named).
    """
    if not items:
        raise InputError("no live source given: pass rtsp:// or http:// URLs, video files or name=URL "
                         "(or list them under live.sources in the --config file)")
    parsed = [parse_source(item) for item in items]
    ids = unique_camera_ids([s.camera_id for s in parsed], [s.display for s in parsed])
    return [LiveSource(cid, s.url, s.is_file) for cid, s in zip(ids, parsed, strict=True)]


@dataclass
class LiveFrame(Frame):
    """A :class:`~pipeline.types.Frame` of a live stream.

    ``timestamp`` is the capture time in seconds on the process clock
    (``time.monotonic() - t0``, the same for every camera), ``index`` counts the
    camera's decoded frames across reconnects.

    Attributes:
        capture_mono: ``time.monotonic()`` when the frame was decoded (s).
        capture_wall: ``time.time()`` at the same moment (Unix s).
    """

    capture_mono: float = 0.0
    capture_wall: float = 0.0


EventSink = Callable[..., Any]  # called as sink(kind, camera=..., time=..., **fields)


class LiveReader(threading.Thread):
    """Read one live source in a daemon thread into a newest-frame-only slot, reconnecting forever.

    Args:
        source: the stream.
        cfg: timeouts (s), back-off (s), jitter, real-time pacing and looping of files.
        t0: ``time.monotonic()`` at the start of the process clock.
        on_event: called as ``on_event("stream_up", camera=, source=, width=, height=, fps=, time=)``
            and ``on_event("stream_down", camera=, source=, reason=, time=)`` (from this thread
            or the watchdog's).
        wakeup: set whenever a frame is put in the slot.
        seed: seed of the back-off jitter.

    Attributes:
        state: ``"connecting"`` (never delivered a frame yet), ``"up"``, ``"down"``,
            or ``"ended"`` (a file that ended without ``loop_files``; the thread exits).
        frames_in: frames decoded so far.
        dropped: frames replaced in the slot before the consumer took them.
        reconnects: connection attempts after the first.
    """

    def __init__(self, source: LiveSource, cfg: LiveConfig, t0: float, on_event: EventSink,
                 wakeup: threading.Event, seed: int | None = None):
        super().__init__(name=f"live-{source.camera_id}", daemon=True)
        self.source = source
        self.cfg = cfg
        self.t0 = t0
        self.on_event = on_event
        self.wakeup = wakeup
        self.state = "connecting"
        self.frames_in = 0
        self.dropped = 0
        self.reconnects = 0
        self.last_frame_mono: float | None = None
        self.width = self.height = 0
        self.fps = 0.0
        self._slot: LiveFrame | None = None
        self._lock = threading.Lock()
        self._stop_evt = threading.Event()
        self._rng = random.Random(seed)
        self._down_reported = False

    # -- consumer side ---------------------------------------------------------------------------
    def take(self) -> LiveFrame | None:
        """The newest frame not yet taken, or ``None``; empties the slot."""
        with self._lock:
            f, self._slot = self._slot, None
        return f

    def stop(self) -> None:
        """Ask the thread to end (it leaves a blocked read at the latest after ``read_timeout_s``)."""
        self._stop_evt.set()

    def check_stall(self, now_mono: float) -> bool:
        """Watchdog: declare the stream down when it is up and sent no frame for ``stall_s`` seconds.

        Args:
            now_mono: ``time.monotonic()``.

        Returns:
            True when this call declared the stream down (a ``stream_down`` event was sent).
        """
        with self._lock:
            last = self.last_frame_mono
            if self.state != "up" or last is None or now_mono - last <= self.cfg.stall_s:
                return False
            self.state = "down"
        self._report_down(f"stalled: no frame for {now_mono - last:.1f} s (watchdog, live.stall_s "
                          f"{self.cfg.stall_s:g} s)")
        return True

    # -- reader thread ---------------------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _report_down(self, reason: str) -> None:
        if not self._down_reported:
            self._down_reported = True
            self.on_event("stream_down", camera=self.source.camera_id, source=self.source.display,
                          reason=mask_text(reason), time=self._now())

    def _set_down(self, reason: str) -> None:
        with self._lock:
            self._slot = None  # a frame from before the outage is no use any more
            if self.state != "ended":
                self.state = "down"
        self._report_down(reason)

    def _open(self) -> av.container.InputContainer:
        cfg = self.cfg
        if self.source.is_file:
            return av.open(self.source.url)
        options = {"fflags": "nobuffer", "flags": "low_delay", "probesize": "65536", "analyzeduration": "500000"}
        if self.source.url.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        return av.open(self.source.url, options=options, timeout=(cfg.open_timeout_s, cfg.read_timeout_s))

    def _put(self, img: Any) -> None:
        now_mono = time.monotonic()
        frame = LiveFrame(self.source.camera_id, self.frames_in, now_mono - self.t0, img, img.shape[1],
                          img.shape[0], capture_mono=now_mono, capture_wall=time.time())
        with self._lock:
            if self._slot is not None:
                self.dropped += 1
            self._slot = frame
            self.frames_in += 1
            self.last_frame_mono = now_mono
            was = self.state
            self.state = "up"
            self.width, self.height = frame.width, frame.height
        self.wakeup.set()
        if was != "up":
            self._down_reported = False
            self.on_event("stream_up", camera=self.source.camera_id, source=self.source.display,
                          width=frame.width, height=frame.height, fps=round(self.fps, 3), time=frame.timestamp)

    def _play(self, container: av.container.InputContainer) -> bool:
        """Decode until the stream ends (True) or the reader is stopped (False); FFmpeg errors propagate."""
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        pace = self.source.is_file and self.cfg.realtime_files
        start = time.monotonic()
        t_first: float | None = None
        for n, vf in enumerate(container.decode(stream)):
            if self._stop_evt.is_set():
                return False
            pts = vf.time if vf.time is not None else (n / self.fps if self.fps > 0 else None)
            if pace and pts is not None:
                if t_first is None:
                    t_first = pts
                wait = start + (pts - t_first) - time.monotonic()
                if wait > 0 and self._stop_evt.wait(wait):
                    return False
            self._put(vf.to_ndarray(format="bgr24"))
        return True

    def run(self) -> None:
        """Thread body: open, read into the newest-frame slot, and reconnect with back-off until stopped."""
        failures = 0
        while not self._stop_evt.is_set():
            reason: str
            frames_before = self.frames_in
            try:
                with self._open() as container:
                    ended = self._play(container)
                if not ended:
                    return
                if self.source.is_file:
                    if self.cfg.loop_files and self.frames_in > frames_before:
                        continue  # replay at once, no outage
                    with self._lock:
                        self.state = "ended"
                    self._report_down("end of file" if self.frames_in else "no decodable frame in the file")
                    return
                reason = "the stream ended (server closed it)"
            except (av.error.ExitError, av.error.TimeoutError):
                # PyAV's interrupt callback: opening or a read took longer than the timeout
                reason = (f"timed out (no answer within live.open_timeout_s {self.cfg.open_timeout_s:g} s or no data "
                          f"within live.read_timeout_s {self.cfg.read_timeout_s:g} s)")
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                reason = f"{exc.__class__.__name__}: {first_line(exc)}"
                if self.source.is_file and self.state == "connecting":
                    with self._lock:
                        self.state = "ended"
                    self._report_down(f"cannot open the file ({reason})")
                    return
            except Exception as exc:  # noqa: BLE001 - one stream must never take the process down
                reason = f"unexpected error {exc.__class__.__name__}: {first_line(exc)}"
            if self.frames_in > frames_before:
                failures = 0  # this connection worked for a while: back-off starts again from the beginning
            self._set_down(reason)
            delay = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2.0 ** min(failures, 30))
            delay *= 1.0 + self.cfg.backoff_jitter * self._rng.uniform(-1.0, 1.0)
            failures += 1
            self.reconnects += 1
            if self._stop_evt.wait(max(0.0, delay)):
                return
