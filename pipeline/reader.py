"""One decoding thread per camera feeding a bounded queue.

The consumer (the stage loop) polls every camera's queue without blocking on
any single one, so a slow or dead camera never holds the others back beyond
what batching needs.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from pipeline.sources import CameraError, CameraSpec, iter_frames
from pipeline.types import Frame


@dataclass
class EndOfStream:
    """Put on a camera's queue after its last frame.

    Attributes:
        error: one-line reason when decoding failed, ``None`` at a clean end.
    """

    error: str | None = None


class CameraReader(threading.Thread):
    """Decode one camera in a daemon thread into a bounded queue.

    Args:
        spec: the camera.
        queue_size: frames held at most (the thread blocks when full).
        max_frames: stop after this many frames (``None`` = all).
        wakeup: event set after every put, so one consumer can wait on all readers.

    Attributes:
        queue: items are :class:`~pipeline.types.Frame` then one :class:`EndOfStream`.
        decode_s: seconds this thread spent decoding (not waiting on a full queue).
        frames: frames decoded so far.
    """

    def __init__(self, spec: CameraSpec, queue_size: int, max_frames: int | None, wakeup: threading.Event):
        super().__init__(name=f"reader-{spec.camera_id}", daemon=True)
        self.spec = spec
        self.queue: queue.Queue[Frame | EndOfStream] = queue.Queue(maxsize=queue_size)
        self.max_frames = max_frames
        self.decode_s = 0.0
        self.frames = 0
        self._wakeup = wakeup
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the thread to end; it puts no more frames after the current one."""
        self._stop.set()

    def _put(self, item: Frame | EndOfStream) -> bool:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            self._wakeup.set()
            return True
        return False

    def run(self) -> None:  # noqa: D102 - Thread API
        error: str | None = None
        try:
            it = iter_frames(self.spec)
            while self.max_frames is None or self.frames < self.max_frames:
                t = time.perf_counter()
                frame = next(it, None)
                self.decode_s += time.perf_counter() - t
                if frame is None:
                    break
                self.frames += 1
                if not self._put(frame):
                    return
        except CameraError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a camera must never take the run down
            error = f"{self.spec.camera_id}: unexpected decoding error ({exc.__class__.__name__}: {exc})"
        # the end marker must arrive even when the consumer is slow (unless stopped)
        self._put(EndOfStream(error))
