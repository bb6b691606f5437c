#!/usr/bin/env python
"""Benchmark the local executor against ``--executor ray`` on the same scene, in one process.

Starts a local Ray once (``ray.init`` with this machine's CPUs; its start-up time is reported apart,
a standing cluster pays it once), then runs ``mtmc run`` on the same cameras alternately with the local
and the Ray executor (``--repeat`` times each, best wall time kept) and prints: wall time, frames/s,
the overhead of Ray against local (target ≤ 10 % on one node), cameras per worker process, the CPUs
each camera actor asks for, the tracklet bytes each camera sent to the driver (per second of video and
per second of run), and cross-camera IDF1 of both when every camera has gt (same identities).

Ray binds the machine's address: run it in a private network namespace, e.g.

    python scripts/make_multicam.py ../shared/data/MOT15/TUD-Stadtmitte -o scenes/tud --jitter
    unshare -n bash -c 'ip link set lo up; python scripts/benchmark_executors.py scenes/tud \\
        --detector yolox:../shared/models/yolox_nano.onnx --reid ../shared/models/osnet_x0_25_msmt17.onnx'
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import MtmcConfig, load_config  # noqa: E402
from pipeline.mot_eval import evaluate, match_gt_to_pred, processed_frames  # noqa: E402
from pipeline.ray_camera import CameraWorker  # noqa: E402
from pipeline.ray_connect import import_ray  # noqa: E402
from pipeline.results import RunResult  # noqa: E402
from pipeline.runner import run  # noqa: E402
from pipeline.sources import discover_cameras  # noqa: E402


def _config(args: argparse.Namespace, executor: dict[str, Any]) -> MtmcConfig:
    over: dict[str, Any] = {"output": {"progress": False}, "executor": executor}
    if args.max_frames is not None:
        over["decode"] = {"max_frames": args.max_frames}
    if args.detector:
        over["detector"] = {"spec": args.detector}
    if args.reid:
        over["reid"] = {"spec": args.reid}
    return load_config(args.config, over)


def _timed(inputs: list[str], cfg: MtmcConfig, out: Path) -> tuple[float, RunResult]:
    t = time.perf_counter()
    res = run(inputs, cfg, out_dir=out)
    return time.perf_counter() - t, res


def _idf1(inputs: list[str], out: Path) -> float | None:
    try:
        gt, pred = match_gt_to_pred([Path(p) for p in inputs], out)
        res = evaluate(gt, pred, frames=processed_frames(out))
    except Exception:  # noqa: BLE001 - no gt: no score
        return None
    return res.cross_camera.idf1 if res.cross_camera is not None else None


def _actor_startup(ray: Any, inputs: list[str], cfg: MtmcConfig) -> float:
    """Seconds until one fresh camera actor per camera has started and loaded its models (all in parallel)."""
    specs = [s for s in discover_cameras(inputs) if s.kind != "detonly"]
    remote = ray.remote(CameraWorker)
    t = time.perf_counter()
    actors = [remote.options(num_cpus=cfg.executor.num_cpus_per_camera).remote(s, cfg) for s in specs]
    ray.get([a.model_names.remote() for a in actors])
    dt = time.perf_counter() - t
    for a in actors:
        ray.kill(a)
    return dt


def _bytes_per_s(res: RunResult) -> tuple[float, float]:
    """Mean over cameras of tracklet bytes sent per second of video (frames / fps) and per KiB."""
    rates = []
    for cid, n in res.executor.get("payload_bytes", {}).items():
        cam = res.cameras[cid]
        if cam.frames and cam.fps:
            rates.append(n / (cam.frames / cam.fps))
    total = sum(res.executor.get("payload_bytes", {}).values())
    return (statistics.mean(rates) if rates else 0.0), total / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="cameras: video files, folders, MOTChallenge sequences")
    ap.add_argument("--detector", default=None, help="detector SPEC (default: the config's)")
    ap.add_argument("--reid", default=None, help="ReID SPEC (default: the config's)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--max-frames", type=int, default=None, help="frames per camera (default: all)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per executor, alternating (best kept)")
    ap.add_argument("--cpus-per-camera", type=float, default=None,
                    help="executor.num_cpus_per_camera (default: CPUs / cameras, all cameras at once)")
    args = ap.parse_args(argv)

    ray = import_ray()
    os.environ.setdefault("RAY_worker_niceness", "0")  # as mtmc's own local Ray (pipeline.ray_connect)
    cpus = os.cpu_count() or 1
    t = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_start = time.perf_counter() - t
    local_cfg = _config(args, {"type": "local"})
    probe = run(args.inputs, local_cfg)  # warm-up (file cache, model files) and the camera count
    cams = len([c for c in probe.cameras.values() if c.frames])
    per_cam = args.cpus_per_camera or max(0.01, cpus / max(1, cams))
    ray_cfg = _config(args, {"type": "ray", "num_cpus_per_camera": per_cam})
    best: dict[str, tuple[float, RunResult, Path]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, cfg in (("local", local_cfg), ("ray", ray_cfg)):
                out = Path(tmp) / f"{name}{i}"
                wall, res = _timed(args.inputs, cfg, out)
                print(f"  {name} run {i + 1}: {wall:.1f} s", file=sys.stderr)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, res, out)
        idf1 = {name: _idf1(args.inputs, out) for name, (_, _, out) in best.items()}
    startup = _actor_startup(ray, args.inputs, ray_cfg)
    _table(best, idf1, cams, cpus, per_cam, ray_start)
    lw, rw = best["local"][0], best["ray"][0]
    print(f"camera actors' start-up (process, imports, models; {cams} in parallel): {startup:.1f} s; Ray without "
          f"it: {100 * ((rw - startup) / lw - 1):+.1f}% against local")
    ray.shutdown()
    return 0


def _table(best: dict[str, tuple[float, RunResult, Path]], idf1: dict[str, float | None], cams: int, cpus: int,
           per_cam: float, ray_start: float) -> None:
    (lw, lres, _), rres = best["local"], best["ray"][1]
    frames = lres.frames
    bps, kib = _bytes_per_s(rres)
    print(f"{cams} cameras, {frames} frames, {cpus} CPUs; Ray start-up (once per cluster) {ray_start:.1f} s")
    head = f"{'executor':<8} {'wall s':>7} {'frames/s':>9} {'overhead':>9} {'cams/worker':>11} {'CPU/cam':>8} " \
           f"{'boxes':>6} {'identities':>10} {'X-IDF1':>7}"
    print(head)
    print("-" * len(head))
    for name, (wall, res, _) in best.items():
        over = f"{100 * (wall / lw - 1):+.1f}%" if name == "ray" else "-"
        per_worker = f"{cams}" if name == "local" else "1"
        cpu = "-" if name == "local" else f"{per_cam:g}"
        boxes = sum(c.num_boxes for c in res.cameras.values())
        score = idf1[name]
        print(f"{name:<8} {wall:>7.1f} {res.frames / wall:>9.1f} {over:>9} {per_worker:>11} {cpu:>8} {boxes:>6} "
              f"{res.linking.get('identities', 0):>10} {'-' if score is None else f'{score:.1f}':>7}")
    print(f"tracklet data to the driver: {bps:.0f} bytes/s of video per camera (mean), {kib:.1f} KiB in all "
          f"({rres.frames} frames); the local run had {lres.frames} frames in {lw:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
