#!/usr/bin/env python
"""Per-actor models against one shared model actor per node, for ``--executor ray``, on the same scene.

Both variants run the same camera actors (:class:`pipeline.ray_camera.CameraWorker`: decode → detect →
track → embed, chunk by chunk) with one driver loop here; only where the models run differs:

- ``per-actor``: each camera actor builds its own detector and ReID model (what ``mtmc run --executor
  ray`` does), ``--cpus`` / cameras CPUs each;
- ``shared``: one model actor holds the only detector and ReID model, with all ``--cpus`` threads, and
  batches the calls that arrive from the camera actors within ``--wait-ms`` (up to the detector's batch);
  the camera actors send it their frames (through Ray's object store) and crops.

Prints, per variant: wall time (models loaded before the clock starts), frames/s, ratio against
``per-actor``, detector calls and mean frames per call in the model actor, boxes, and the bytes of
frames sent to the model actor. Run it in a private network namespace (Ray binds the machine's address):

    unshare -n bash -c 'ip link set lo up; python scripts/benchmark_model_actor.py scenes/tud \\
        --detector yolox:../shared/models/yolox_nano.onnx --reid ../shared/models/osnet_x0_25_msmt17.onnx'
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import MtmcConfig, load_config  # noqa: E402
from pipeline.models import Models, build_models  # noqa: E402
from pipeline.ray_camera import CameraWorker  # noqa: E402
from pipeline.ray_connect import import_ray  # noqa: E402
from pipeline.sources import discover_cameras  # noqa: E402
from pipeline.types import Detections, Frame  # noqa: E402
from reid.extractor import FeatureExtractor  # noqa: E402


class _Batcher:
    """Runs ``fn`` on the items of the calls that arrive within ``wait_s`` of each other (one thread)."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], max_items: int, wait_s: float):
        self.fn, self.max_items, self.wait_s = fn, max_items, wait_s
        self.requests: queue.Queue[tuple[list[Any], dict[str, Any], threading.Event]] = queue.Queue()
        self.calls = self.items = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def __call__(self, items: list[Any]) -> list[Any]:
        box: dict[str, Any] = {}
        done = threading.Event()
        self.requests.put((items, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["out"]

    def _loop(self) -> None:
        while True:
            batch = [self.requests.get()]
            end = time.monotonic() + self.wait_s
            while sum(len(r[0]) for r in batch) < self.max_items and (left := end - time.monotonic()) > 0:
                try:
                    batch.append(self.requests.get(timeout=left))
                except queue.Empty:
                    break
            flat = [x for items, _, _ in batch for x in items]
            try:
                out = self.fn(flat) if flat else []
                self.calls, self.items = self.calls + 1, self.items + len(flat)
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for _, box, done in batch:
                    box["error"] = exc
                    done.set()
                continue
            pos = 0
            for items, box, done in batch:
                box["out"] = out[pos:pos + len(items)]
                pos += len(items)
                done.set()


class ModelServer:
    """The shared model actor: one detector and one ReID model, calls batched across camera actors."""

    def __init__(self, cfg: MtmcConfig, wait_s: float):
        self.models = build_models(cfg, {})
        det, ext = self.models.detector, self.models.extractor
        self.det = _Batcher(det.detect, max(1, det.max_batch), wait_s)
        self.ext = _Batcher(lambda crops: list(ext.embed(crops)) if ext is not None else [], 64, wait_s)
        self.frame_bytes = 0

    def info(self) -> tuple[str, int, str | None, int, int]:
        """``(detector name, detector max batch, ReID name or None, feature dim D, ReID batch)``."""
        det, ext = self.models.detector, self.models.extractor
        return det.name, det.max_batch, ext.name if ext else None, ext.dim if ext else 0, ext.batch if ext else 1

    def detect(self, frames: list[Frame]) -> list[Detections]:
        """Detections of ``frames`` (H×W×3 uint8 BGR), batched with other cameras' calls; counts the bytes."""
        self.frame_bytes += sum(f.image.nbytes for f in frames if f.image is not None)
        return self.det(frames)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """N×D ``float32`` L2-normalised features of N uint8 BGR crops, batched across cameras."""
        return np.asarray(self.ext(crops), np.float32).reshape(len(crops), -1)

    def counters(self) -> dict[str, float]:
        """Detector calls made, frames detected, and bytes of frames received so far."""
        return {"detect_calls": self.det.calls, "det_frames": self.det.items, "frame_bytes": self.frame_bytes}


class RemoteDetector:
    """A camera actor's detector that asks the shared model actor (picklable: holds the actor handle)."""

    def __init__(self, server: Any, name: str, max_batch: int):
        self.server, self.name, self.max_batch = server, f"shared:{name}", max_batch

    def detect(self, frames: list[Frame]) -> list[Detections]:
        """The shared actor's detections of ``frames`` (the frames travel through Ray's object store)."""
        return import_ray().get(self.server.detect.remote(frames))

    def close(self) -> None:
        """Nothing to release here (the shared actor owns the model)."""


class RemoteExtractor(FeatureExtractor):
    """A camera actor's ReID extractor that asks the shared model actor for the features of its crops."""

    def __init__(self, server: Any, name: str, dim: int, batch: int):
        self.server, self.name, self.dim, self.batch = server, f"shared:{name}", dim, batch

    def _forward(self, batch: np.ndarray) -> np.ndarray:  # not used: embed sends the crops themselves
        raise NotImplementedError

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """N×D ``float32`` features of N uint8 BGR crops, from the shared actor (``0×D`` for none)."""
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        return import_ray().get(self.server.embed.remote(list(crops)))


def _config(args: argparse.Namespace, cpus_per_camera: float, threads: int, batch: int = 4) -> MtmcConfig:
    over: dict[str, Any] = {"output": {"progress": False}, "executor": {"type": "ray",
                                                                        "num_cpus_per_camera": cpus_per_camera},
                            "detector": {"spec": args.detector, "threads": threads, "batch": batch},
                            "reid": {"spec": args.reid, "threads": threads}}
    if args.max_frames is not None:
        over["decode"] = {"max_frames": args.max_frames}
    return load_config(None, over)


def _drive(ray: Any, actors: list[Any], chunk: int) -> tuple[float, int, int]:
    """Step every camera actor to the end of its input; (wall s, frames, boxes)."""
    t = time.perf_counter()
    pending = {a.step.remote(chunk): a for a in actors}
    frames = boxes = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        actor = pending.pop(ready[0])
        c = ray.get(ready[0])
        frames += c.frames
        boxes += sum(len(tr) for tr in c.tracklets)
        if not c.ended:
            pending[actor.step.remote(chunk)] = actor
    return time.perf_counter() - t, frames, boxes


def _variant(ray: Any, name: str, specs: list, args: argparse.Namespace) -> dict[str, Any]:
    cams = len(specs)
    remote = ray.remote(CameraWorker)
    server = None
    if name == "per-actor":
        cfg = _config(args, args.cpus / cams, 0)
        actors = [remote.options(num_cpus=cfg.executor.num_cpus_per_camera).remote(s, cfg) for s in specs]
    else:
        cfg = _config(args, 0.01, int(args.cpus))  # the camera actors: 4 frames per call, as per-actor
        server_cfg = _config(args, 0.01, int(args.cpus), batch=4 * cams)  # batches of all cameras' calls
        server = ray.remote(ModelServer).options(num_cpus=args.cpus - 0.01 * cams, max_concurrency=4 * cams + 4)\
            .remote(server_cfg, args.wait_ms / 1000)
        dname, _, rname, dim, rbatch = ray.get(server.info.remote())
        models = Models(RemoteDetector(server, dname, cfg.detector.batch),
                        RemoteExtractor(server, rname, dim, rbatch) if rname else None, own_detector=False)
        actors = [remote.options(num_cpus=0.01).remote(s, cfg, models) for s in specs]
    ray.get([a.model_names.remote() for a in actors])  # models loaded before the clock starts
    wall, frames, boxes = _drive(ray, actors, cfg.executor.chunk_frames)
    row = {"variant": name, "wall": wall, "frames": frames, "boxes": boxes}
    if server is not None:
        row.update(ray.get(server.counters.remote()))
        ray.kill(server)
    for a in actors:
        ray.kill(a)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="cameras: video files, folders, MOTChallenge sequences")
    ap.add_argument("--detector", required=True, help="detector SPEC")
    ap.add_argument("--reid", required=True, help="ReID SPEC")
    ap.add_argument("--max-frames", type=int, default=None, help="frames per camera (default: all)")
    ap.add_argument("--cpus", type=float, default=float(os.cpu_count() or 1), help="CPUs for all actors together")
    ap.add_argument("--wait-ms", type=float, default=5.0, help="shared actor: how long a batch waits for more calls")
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant, alternating (best kept)")
    args = ap.parse_args(argv)
    ray = import_ray()
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=int(np.ceil(args.cpus)), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    specs = [s for s in discover_cameras(args.inputs) if s.kind != "detonly"]
    best: dict[str, dict[str, Any]] = {}
    for i in range(args.repeat):
        for name in ("per-actor", "shared"):
            row = _variant(ray, name, specs, args)
            print(f"  {name} run {i + 1}: {row['wall']:.1f} s", file=sys.stderr)
            if name not in best or row["wall"] < best[name]["wall"]:
                best[name] = row
    ray.shutdown()
    _table(best, len(specs), args)
    return 0


def _table(best: dict[str, dict[str, Any]], cams: int, args: argparse.Namespace) -> None:
    base = best["per-actor"]["wall"]
    print(f"{cams} cameras, {args.cpus:g} CPUs, best of {args.repeat}; shared batches calls within {args.wait_ms:g} ms")
    head = f"{'variant':<10} {'wall s':>7} {'frames/s':>9} {'vs per-actor':>12} {'det calls':>9} " \
           f"{'frames/call':>11} {'boxes':>6} {'frames sent MB':>14}"
    print(head)
    print("-" * len(head))
    for name, r in best.items():
        calls = r.get("detect_calls")
        per_call = f"{r['det_frames'] / calls:.2f}" if calls else "-"
        sent = f"{r['frame_bytes'] / 1e6:.0f}" if "frame_bytes" in r else "0"
        print(f"{name:<10} {r['wall']:>7.1f} {r['frames'] / r['wall']:>9.1f} {r['wall'] / base:>11.2f}x "
              f"{calls if calls else '-':>9} {per_call:>11} {r['boxes']:>6} {sent:>14}")


if __name__ == "__main__":
    sys.exit(main())
