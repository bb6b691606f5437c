"""The central part of one ``mtmc live`` session: events, the incremental linker, identities, outputs, stats.

:class:`LiveHub` receives what the streams' per-camera stages produce (stream events,
confirmed tracks, ended tracklets, early-link snapshots) and turns it into identity
decisions and files: :class:`~pipeline.live_session.LiveSession` feeds it from
cameras in this process, :class:`~pipeline.ray_live.RayLiveSession` from one Ray actor
per stream. :class:`LiveStats` makes the periodic ``stats`` event.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import MtmcConfig
from pipeline.events import EventWriter
from pipeline.export import identity_record, write_trajectories
from pipeline.live_reader import LiveSource
from pipeline.redact import redact
from pipeline.results import CameraResult, RunResult
from pipeline.summary import identity_counts, merge_record, stage_timers
from pipeline.types import Tracklet
from trackers.linking.incremental import IncrementalLinker


def r3(x: float, nd: int = 3) -> float:
    """``x`` rounded to ``nd`` decimals as a plain float (the precision of events)."""
    return round(float(x), nd)


def _rss_mb() -> float | None:
    """Resident memory of this process in MiB (Linux ``/proc``), ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None




class LiveStats:
    """Per-stream counters for the periodic ``stats`` event.

    Args:
        readers: camera id → its :class:`~pipeline.live_reader.LiveReader` (or an object with the same
            figures: ``state``, ``frames_in``, ``dropped``, ``width``, ``height``).
    """

    def __init__(self, readers: dict[str, Any]):
        self.readers = readers
        self.latencies: dict[str, list[float]] = {c: [] for c in readers}
        # the last 10 000 latencies per stream for the session's percentiles (bounded memory)
        self.recent: dict[str, deque[float]] = {c: deque(maxlen=10_000) for c in readers}
        self.processed: dict[str, int] = dict.fromkeys(readers, 0)
        self._last = {c: (0, 0, 0) for c in readers}  # frames_in, processed, dropped at the last event

    def event(self, period_s: float) -> dict[str, Any]:
        """The ``stats`` event fields for the last ``period_s`` seconds: RSS in MB and, per stream, state,
        fps in/out, dropped frames (period and total), p50/p95 capture-to-event latency (s) and frame size (px)."""
        streams = {}
        for cid, r in self.readers.items():
            fin, fout, drop = r.frames_in, self.processed[cid], r.dropped
            lin, lout, ldrop = self._last[cid]
            self._last[cid] = (fin, fout, drop)
            lat = self.latencies[cid]
            streams[cid] = {
                "state": r.state,
                "fps_in": r3((fin - lin) / period_s, 2) if period_s > 0 else 0.0,
                "fps_out": r3((fout - lout) / period_s, 2) if period_s > 0 else 0.0,
                "dropped": drop - ldrop,
                "dropped_total": drop,
                "latency_p50_s": r3(np.percentile(lat, 50)) if lat else None,
                "latency_p95_s": r3(np.percentile(lat, 95)) if lat else None,
                "width": r.width,
                "height": r.height,
            }
            self.latencies[cid] = []
        mem = _rss_mb()
        return {"period_s": r3(period_s), "memory_mb": r3(mem, 1) if mem is not None else None, "streams": streams}


class LiveHub:
    """Events, linking and outputs of a live session; the cameras are the subclass's (:attr:`cameras`).

    Args:
        sources: the streams.
        cfg: the validated config.
        out_dir: output folder (exists; ``events.jsonl`` is created here).
        t0: ``time.monotonic()`` at the start of the session clock.
        log: one-line messages.
        detector_name, reid_name: names of the models (``reid_name`` ``None``: no ReID, every track its
            own identity).

    Attributes:
        cameras: camera id → an object with ``reader`` (``state``, ``frames_in``, ``dropped``,
            ``reconnects``, ``fps``, ``width``, ``height``), ``result`` (its
            :class:`~pipeline.results.CameraResult`) and ``open_snapshots()`` (the early-linked open tracks);
            set by the subclass.
    """

    cameras: dict[str, Any]

    def __init__(self, sources: list[LiveSource], cfg: MtmcConfig, out_dir: Path, t0: float,
                 log: Callable[[str], None], detector_name: str, reid_name: str | None):
        self.cfg = cfg
        self.out_dir = out_dir
        self.detector_name = detector_name
        self.reid_name = reid_name
        self.t0 = t0
        self.log = log
        self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # Unix time of session time 0: absolute times are wall0 + session time (one monotonic clock, so the
        # mapping holds across reconnects and is not moved by later NTP steps)
        self.wall0 = time.time() - (time.monotonic() - t0)
        self.events = EventWriter(out_dir / "events.jsonl", t0)
        self.linker = IncrementalLinker(cfg.linking)
        self.sources = {s.camera_id: s for s in sources}
        self.done: dict[str, list[Tracklet]] = {c: [] for c in self.sources}
        self.early_linked: dict[tuple[str, int], int | None] = {}  # open tracks linked early → global id
        self.assigned: dict[tuple[str, int], int] = {}  # (camera, local id) → global id, once decided
        self.awaiting: dict[tuple[str, int], list[Tracklet]] = {}  # ended, id not decided yet
        self.merges: list[dict[str, Any]] = []  # identity_merged so far, as in trajectories.json
        self.tracks_ended: dict[str, int] = dict.fromkeys(self.sources, 0)
        self.flushed = 0  # identities written to trajectories.jsonl and dropped from memory
        self._jsonl: Any = None  # OUT/trajectories.jsonl, opened (append) at the first flushed identity
        self._next_retire = 0.0
        self.stages = stage_timers()

    def restart_clock(self, t0: float) -> None:
        """Move session time 0 to ``t0`` (``time.monotonic()``; before any frame: the streams start now)."""
        self.t0 = t0
        self.wall0 = time.time() - (time.monotonic() - t0)
        self.events.rebase(t0)

    @property
    def readers(self) -> dict[str, Any]:
        """Camera id → its reader (or the reader's figures mirrored from a Ray actor)."""
        return {cid: cam.reader for cid, cam in self.cameras.items()}

    # -- events -----------------------------------------------------------------------------------
    def _stream_event(self, kind: str, **fields: Any) -> None:
        self.events.write(kind, **fields)
        cam = fields.get("camera", "?")
        if kind == "stream_down":
            self.log(f"{cam}: stream down ({fields.get('reason')})")
        else:
            self.log(f"{cam}: stream up ({fields.get('width')}x{fields.get('height')})")

    def _link(self, tracklets: list[Tracklet], still_open: bool = False) -> None:
        """Give tracklets global ids through the incremental linker; write its events.

        ``still_open``: the tracklets are snapshots of tracks still in view
        (see :meth:`trackers.linking.incremental.IncrementalLinker.add`). With
        ``linking.decision_delay_s`` > 0 a tracklet's id comes later (its
        ``identity_assigned`` event is written when the linker decides, from
        :meth:`flush_links`); until then its ``global_id`` is ``None``.
        """
        if not tracklets:
            return
        t = time.perf_counter()
        min_len = self.cfg.tracklets.min_length
        use = self.reid_name is not None and self.cfg.linking.enabled
        batch = [tr if use and len(tr) >= min_len else dataclasses.replace(tr, feature=None) for tr in tracklets]
        link_events = self.linker.add(batch, still_open=still_open)
        self.stages["link"] += time.perf_counter() - t
        self._apply(link_events)
        for tr in tracklets:
            tr.global_id = self.assigned.get((tr.camera_id, int(tr.local_id)))

    def flush_links(self, now: float | None) -> None:
        """Let the linker decide the tracklets whose ``decision_delay_s`` has passed by ``now``
        (process clock, s; ``None``: all of them, at exit) and write the events."""
        t = time.perf_counter()
        link_events = self.linker.flush(now)
        self.stages["link"] += time.perf_counter() - t
        self._apply(link_events)

    def _apply(self, link_events: list) -> None:
        """Record and write the linker's events (``identity_assigned``, ``identity_merged``)."""
        now = self.events.now()
        for e in link_events:
            if e.kind == "identity_assigned":
                key = (str(e.camera_id), int(e.local_id or 0))
                self.assigned[key] = int(e.global_id)
                if key in self.early_linked:
                    self.early_linked[key] = int(e.global_id)
                for tr in self.awaiting.pop(key, []):
                    tr.global_id = int(e.global_id)
                self.events.write("identity_assigned", camera=e.camera_id, local_id=int(e.local_id or 0),
                                  global_id=int(e.global_id), new_identity=bool(e.new_identity), time=now)
            else:
                self.merges.append(merge_record(e.global_id, e.merged_into or 0, e.time))
                self.events.write("identity_merged", global_id=int(e.global_id), merged_into=int(e.merged_into or 0),
                                  time=now)

    def _end(self, cid: str, tracklets: list[Tracklet]) -> None:
        """Link ended tracklets and write their ``track_ended`` events."""
        if not tracklets:
            return
        self._link(tracklets)
        self.tracks_ended[cid] += len(tracklets)
        for tr in tracklets:
            self.done[cid].append(tr)
            self.early_linked.pop((cid, tr.local_id), None)
            if tr.global_id is None:  # the linker decides after linking.decision_delay_s
                self.awaiting.setdefault((cid, int(tr.local_id)), []).append(tr)
            gid = self.linker.resolve(tr.global_id) if tr.global_id is not None else None
            self.events.write(
                "track_ended", camera=cid, local_id=int(tr.local_id), global_id=gid,
                start_time=r3(tr.start_time), end_time=r3(tr.end_time), start_frame=int(tr.frames[0]),
                end_frame=int(tr.frames[-1]), boxes=len(tr), num_features=int(tr.num_features),
                last_xyxy=[r3(v, 1) for v in tr.boxes[-1]],
            )

    def started(self, tracks: list[dict[str, Any]], now_mono: float) -> None:
        """Write one ``track_started`` event per item of :func:`~pipeline.live_camera.process_batch`'s list, with
        its capture-to-event latency (s) up to ``now_mono`` (``time.monotonic()``)."""
        for tr in tracks:
            fields = {k: v for k, v in tr.items() if k != "capture_mono"}
            self.events.write("track_started", **fields, latency_s=r3(now_mono - tr["capture_mono"]))

    def link_early(self, cid: str, snaps: list[Tracklet]) -> None:
        """Link snapshots of open tracks of camera ``cid`` (in view for ``live.link_after_s``) and record their ids."""
        self._link(snaps, still_open=True)
        for snap in snaps:
            self.early_linked[(cid, snap.local_id)] = snap.global_id

    def decide(self, now: float) -> None:
        """The linker's delayed decisions (``linking.decision_delay_s``) and identity retention
        (``live.retention_s``) up to session time ``now`` (s)."""
        if self.cfg.linking.decision_delay_s > 0:
            self.flush_links(now)
        if self.cfg.live.retention_s is not None and now >= self._next_retire:
            self.retire(now)
            self._next_retire = now + min(1.0, self.cfg.live.retention_s / 4)

    def retire(self, now: float) -> list[int]:
        """Flush the identities last seen more than ``live.retention_s`` before ``now`` (session clock, s).

        Each goes, final, as one line to ``OUT/trajectories.jsonl`` (the format of an entry of
        ``trajectories.json``'s ``identities``; appended and flushed per line, secrets masked), and
        is dropped from memory: its tracklets, its merge records, the linker's identity
        (:meth:`~trackers.linking.incremental.IncrementalLinker.forget`). Identities with a track
        still in view or an id not yet decided stay. Returns the global ids flushed.
        """
        retention = self.cfg.live.retention_s
        if retention is None:
            return []
        by_gid: dict[int, list[Tracklet]] = {}
        for trs in self.done.values():
            for tr in trs:
                if tr.global_id is not None:
                    by_gid.setdefault(self.linker.resolve(tr.global_id), []).append(tr)
        old = [g for g, trs in by_gid.items() if max(t.end_time for t in trs) < now - retention]
        if not old:
            return []
        merged_into = [self.linker.resolve(m["merged_into"]) for m in self.merges]
        gone = set(self.linker.forget(old))
        if not gone:
            return []
        if self._jsonl is None:
            self._jsonl = (self.out_dir / "trajectories.jsonl").open("a", encoding="utf-8")
        for gid in sorted(gone):
            line = json.dumps(redact(identity_record(gid, by_gid[gid], self.wall0)), separators=(",", ":"),
                              ensure_ascii=False)
            self._jsonl.write(line + "\n")
            self._jsonl.flush()  # one whole line at a time: a kill leaves at most a partial last line
        dropped = {id(t) for g in gone for t in by_gid[g]}
        for cid in self.done:
            self.done[cid] = [t for t in self.done[cid] if id(t) not in dropped]
        for g in gone:
            for t in by_gid[g]:
                self.assigned.pop((t.camera_id, int(t.local_id)), None)
        self.merges = [m for m, into in zip(self.merges, merged_into, strict=True) if into not in gone]
        self.flushed += len(gone)
        return sorted(gone)

    def close_files(self) -> None:
        """Close ``trajectories.jsonl`` (idempotent; ``events.jsonl`` is closed by its writer)."""
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    def trajectories(self, final: bool) -> RunResult:
        """A :class:`~pipeline.results.RunResult` of the tracklets so far (ended ones and linked open ones)."""
        cams: dict[str, CameraResult] = {}
        for cid, cam in self.cameras.items():
            r = cam.reader
            res = dataclasses.replace(cam.result, tracklets=[], fps=r.fps)
            tracklets = list(self.done[cid])
            if not final:
                for snap in cam.open_snapshots():
                    if (cid, snap.local_id) in self.early_linked:
                        snap.global_id = self.early_linked[(cid, snap.local_id)]
                        tracklets.append(snap)
            res.tracklets = [dataclasses.replace(t, global_id=self.linker.resolve(t.global_id))
                             for t in tracklets if t.global_id is not None]
            if final and r.state in ("down", "connecting"):
                res.status = "failed"
                res.error = "stream down at exit" if r.frames_in else "stream never delivered a frame"
            cams[cid] = res
        result = RunResult(cameras=cams, stages=dict(self.stages), wall_s=self.events.now(),
                           detector=self.detector_name, config=self.cfg.model_dump(by_alias=True),
                           reid=self.reid_name, created=self.created,
                           merges=list(self.merges))
        result.linking = {"method": "incremental (live)", "mode": "incremental", "merges": len(self.merges),
                          **identity_counts(result.tracklets), "retention_s": self.cfg.live.retention_s,
                          "flushed_identities": self.flushed}
        return result

    def write_trajectories(self, final: bool) -> None:
        """Rewrite ``OUT/trajectories.json`` atomically (temp file + rename) from :meth:`trajectories`."""
        t = time.perf_counter()
        write_trajectories(self.trajectories(final), self.out_dir, utc_origin=self.wall0)
        self.stages["export"] += time.perf_counter() - t
