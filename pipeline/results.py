"""Runtime results of a run (what ``mtmc run`` writes), separate from config and schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.clock import CameraClock, RunClock
from pipeline.types import Tracklet, xyxy_to_tlwh


def _empty_rows() -> np.ndarray:
    return np.zeros((0, 7), np.float64)


@dataclass
class CameraResult:
    """Per-camera outcome.

    Attributes:
        camera_id: sanitised camera id (also the name of ``tracks/<camera_id>.txt``).
        source: input path or URL, credentials masked.
        kind: ``"video"``, ``"images"`` or ``"detonly"``.
        fps: nominal frame rate (frames/s; 0 when unknown).
        width, height: frame size in pixels (0 before the first frame).
        frames: frames processed.
        tracklets: the camera's tracklets (local ids; ``global_id`` set after linking).
        status: ``"ok"``, ``"failed"`` or ``"interrupted"`` (the run was stopped before its end).
        error: one-line reason when failed (frames before the failure are kept).
        clock: where the camera sits on the run's common clock (offline runs), else ``None``.
        dropped_tracks: tracks not kept as tracklets, their mean detection score being below
            ``tracklets.min_mean_score``.
    """

    camera_id: str
    source: str
    kind: str
    fps: float = 0.0
    width: int = 0
    height: int = 0
    frames: int = 0
    tracklets: list[Tracklet] = field(default_factory=list)
    status: str = "ok"
    error: str | None = None
    clock: CameraClock | None = None
    dropped_tracks: int = 0

    @property
    def rows(self) -> np.ndarray:
        """N×7 ``float64`` MOTChallenge rows ``frame (1-based), id, x, y, w, h, score``
        (pixels, ``tlwh``), sorted by frame then id. ``id`` is the global id once
        linked, else the local track id."""
        blocks = []
        for t in self.tracklets:
            tid = t.global_id if t.global_id is not None else t.local_id
            blocks.append(np.column_stack([
                t.frames + 1, np.full(len(t), tid), xyxy_to_tlwh(t.boxes), t.scores,
            ]).astype(np.float64))
        if not blocks:
            return _empty_rows()
        r = np.concatenate(blocks)
        return r[np.lexsort((r[:, 1], r[:, 0]))]

    @property
    def num_tracks(self) -> int:
        """Number of tracklets (local track ids) of this camera."""
        return len(self.tracklets)

    @property
    def num_boxes(self) -> int:
        """Number of boxes over all tracklets (lines of the tracks file)."""
        return sum(len(t) for t in self.tracklets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary entry (no per-frame rows)."""
        return {
            "id": self.camera_id,
            "source": self.source,
            "kind": self.kind,
            "fps": round(self.fps, 3),
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "tracks": self.num_tracks,
            "dropped_tracks": self.dropped_tracks,
            "boxes": self.num_boxes,
            "status": self.status,
            "error": self.error,
            **({} if self.clock is None else {"clock": self.clock.to_dict()}),
        }


@dataclass
class RunResult:
    """Everything one run produced.

    Attributes:
        cameras: camera id → :class:`CameraResult`, in input order.
        stages: seconds per stage: ``decode`` (summed over reader threads, which
            run in parallel), ``detect``, ``track``, ``reid``, ``link``, ``export``.
        wall_s: wall-clock seconds of the whole run.
        detector: description of the detector used.
        config: the validated config as a dict.
        reid: description of the ReID model, ``None`` without ReID.
        linking: linking statistics (tracklets, identities, cross-camera identities).
        merges: identity merges of incremental linking, ``{"global_id", "merged_into",
            "time"}`` (s, stream clock) in stream order; empty offline.
        created: ISO 8601 UTC time the run started.
        interrupted: the run was stopped early (Ctrl-C, SIGTERM, SIGHUP); results are partial.
        outputs: files and folders written, relative to the output folder (``summary.json``
            lists them; a rerun with ``--exist-ok`` removes them).
        output_errors: one line per output that could not be written.
        clock: the cameras' common clock (offline runs; ``None`` in live mode).
        link_distances: ``(camera_id, local_id)`` → the tracklet's smallest linking distance to
            a tracklet of another camera (offline linking; kept in ``features.npz`` for the report).
        executor: where the stages ran when not in this process (``--executor ray``: address, actor
            names, tracklet bytes each camera sent to the driver); empty for the local executor.
    """

    cameras: dict[str, CameraResult]
    stages: dict[str, float]
    wall_s: float
    detector: str
    config: dict[str, Any]
    reid: str | None = None
    linking: dict[str, Any] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""
    interrupted: bool = False
    outputs: list[str] = field(default_factory=list)
    output_errors: list[str] = field(default_factory=list)
    clock: RunClock | None = None
    link_distances: dict[tuple[str, int], float] = field(default_factory=dict)
    executor: dict[str, Any] = field(default_factory=dict)

    @property
    def tracklets(self) -> list[Tracklet]:
        """All cameras' tracklets, camera by camera."""
        return [t for c in self.cameras.values() for t in c.tracklets]

    @property
    def frames(self) -> int:
        """Frames processed over all cameras."""
        return sum(c.frames for c in self.cameras.values())

    @property
    def failed(self) -> list[str]:
        """Ids of cameras that failed (not those interrupted)."""
        return [c.camera_id for c in self.cameras.values() if c.status == "failed"]

    @property
    def nothing_decoded(self) -> bool:
        """Every camera failed before its first frame: no input could be opened at all."""
        return all(c.status == "failed" and c.frames == 0 for c in self.cameras.values())

    def summary(self) -> dict[str, Any]:
        """The content of ``summary.json``."""
        return {
            "cameras": [c.to_dict() for c in self.cameras.values()],
            "frames": self.frames,
            "tracks": sum(c.num_tracks for c in self.cameras.values()),
            "identities": self.linking.get("identities", 0),
            "cross_camera_identities": self.linking.get("cross_camera_identities", 0),
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.frames / self.wall_s, 2) if self.wall_s > 0 else 0.0,
            "stages_s": {k: round(v, 3) for k, v in self.stages.items()},
            "detector": self.detector,
            "reid": self.reid,
            "linking": self.linking,
            "failed_cameras": self.failed,
            "interrupted": self.interrupted,
            "outputs": list(self.outputs),
            "output_errors": list(self.output_errors),
            **({} if self.clock is None else {"clock_origin": self.clock.utc(0.0)}),
            "config": self.config,
        }

    def format_table(self) -> str:
        """A short aligned text table, one line per camera and a total line.

        The status column holds ``ok``, ``interrupted`` or ``failed: <reason>``; a camera's
        error starts with its id (``"<camera_id>: …"``, as on stderr), which the table's
        camera column already shows, so the reason is given without that prefix.
        """
        head = f"{'camera':<24} {'frames':>7} {'tracks':>7} {'boxes':>7}  status"
        lines = [head, "-" * len(head)]
        for c in self.cameras.values():
            status = c.status if c.error is None else f"{c.status}: {_without_camera_prefix(c.error, c.camera_id)}"
            lines.append(f"{c.camera_id[:24]:<24} {c.frames:>7} {c.num_tracks:>7} {c.num_boxes:>7}  {status}")
        fps = self.frames / self.wall_s if self.wall_s > 0 else 0.0
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.stages.items())
        lines.append(
            f"{count_noun(len(self.cameras), 'camera')}, {count_noun(self.frames, 'frame')} in {self.wall_s:.1f}s "
            f"({fps:.1f} frames/s); {stages}"
        )
        if self.linking:
            lk = self.linking
            lines.append(
                f"{count_noun(lk.get('tracklets', 0), 'tracklet')} -> "
                f"{count_noun(lk.get('identities', 0), 'identity', 'identities')} "
                f"({lk.get('cross_camera_identities', 0)} seen by several cameras); {lk.get('method', '')}"
            )
        return "\n".join(lines)


def count_noun(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 camera"``, ``"0 cameras"``, ``"2 identities"``: ``n`` and the noun in the right number."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _without_camera_prefix(error: str, camera_id: str) -> str:
    """``error`` without a leading ``"<camera_id>: "`` (camera errors name their camera first)."""
    prefix = f"{camera_id}: "
    return error[len(prefix):] if error.startswith(prefix) else error
