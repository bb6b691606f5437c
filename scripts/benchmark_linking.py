#!/usr/bin/env python
"""Benchmark cross-camera linking at scale: dense vs sparse (offline) vs incremental.

Synthetic tracklets with cluster structure (D = 512, L2-normalised):
identities belong to look-alike groups (similar clothing); a tracklet's
feature is its identity's centre plus a per-camera colour shift plus noise.
Each identity walks through 2–5 of 40 cameras with 5–40 s transits, one to
three tracklets per camera visit (fragmented tracks), over a stream whose
length grows with N, so same-camera time overlaps (cannot-link) occur
between different people. Ground truth is the identity.

Each case runs in its own subprocess so peak memory (``ru_maxrss``) does not
mix; the table shows wall seconds of linking only (data generation excluded),
CPU seconds of the process over the same span (all threads; on a shared
machine less noisy than wall time: with 2 free cores, wall ≈ CPU / 2 for the
threaded parts), peak RSS of the process, and pairwise precision / recall / F1 of the clusters
(pairs of tracklets with one identity; Manning et al., "Introduction to
Information Retrieval", ch. 16.3). ``dense`` is skipped where the N×N
matrices do not fit (N > 20,000: the dense re-ranking peaks at about
45 · N² bytes, 4.5 GB measured at N = 10⁴). The config is ``configs/default.yaml``'s ``linking`` section
(re-ranking on from 200 tracklets, threshold 0.4) with the method or mode of the row.

Examples::

    python scripts/benchmark_linking.py                        # the whole table (~10 min on 2 cores)
    python scripts/benchmark_linking.py --n 100000 --mode sparse
    python scripts/benchmark_linking.py --n 10000 --mode incremental --delay 0   # ids at once
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import LinkConfig  # noqa: E402
from pipeline.types import Tracklet  # noqa: E402
from pipeline.vectors import l2_normalize  # noqa: E402

DENSE_MAX_N = 20000
SIZES = (1000, 10000, 100000)
MODES = ("dense", "sparse", "incremental")


def synthetic_tracklets(
    n: int, dim: int = 512, seed: int = 0, num_cameras: int = 40
) -> tuple[list[Tracklet], np.ndarray]:
    """``n`` synthetic tracklets and their ground-truth identity labels (N ``int64``).

    Features: ``normalise(group_g + 0.75·person_i + 0.35·camera_c + 0.9·noise)``
    (each term a random unit vector; groups of 8 identities look alike), which
    puts same-identity cosine distances at about 0.2–0.45 and look-alikes at about
    0.45–0.7. Times: seconds; identities enter uniformly over ``n / 4`` s.
    """
    rng = np.random.default_rng(seed)

    def unit(shape: tuple[int, ...]) -> np.ndarray:
        return l2_normalize(rng.normal(size=shape))

    groups = unit((max(1, n // 64), dim))
    cams = unit((num_cameras, dim))
    horizon = n / 4.0
    out: list[Tracklet] = []
    labels: list[int] = []
    next_local = np.ones(num_cameras, dtype=np.int64)
    pid = 0
    while len(out) < n:
        centre = groups[pid % len(groups)] + 0.75 * unit((dim,))
        t = rng.uniform(0, horizon)
        for cam in rng.choice(num_cameras, size=int(rng.integers(2, 6)), replace=False).tolist():
            for _ in range(int(rng.integers(1, 4))):
                dur = rng.uniform(2.0, 20.0)
                ts = np.linspace(t, t + dur, 5)
                f = centre + 0.35 * cams[cam] + 0.9 * unit((dim,))
                f = l2_normalize(f, dtype=np.float32)
                out.append(Tracklet(
                    camera_id=f"cam{cam:02d}", local_id=int(next_local[cam]),
                    frames=np.round(ts * 10).astype(np.int64), timestamps=ts,
                    boxes=np.tile(np.array([[0, 0, 40, 100]], np.float32), (5, 1)),
                    scores=np.full(5, 0.9, np.float32), feature=f, num_features=5,
                ))
                labels.append(pid)
                next_local[cam] += 1
                t += dur + rng.uniform(0.2, 2.0)
                if len(out) == n:
                    break
            t += rng.uniform(5.0, 40.0)
            if len(out) == n:
                break
        pid += 1
    return out, np.asarray(labels, dtype=np.int64)


def pairwise_prf(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 (in %) of a clustering against ground truth.

    A pair of items is positive when it shares a cluster; computed from the
    contingency table, ``O(N log N)``. Empty sets count as 100.
    """
    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) // 2).sum())

    _, joint = np.unique(np.stack([truth, pred], axis=1), axis=0, return_counts=True)
    tp = pairs(joint)
    pp = pairs(np.unique(pred, return_counts=True)[1])
    tt = pairs(np.unique(truth, return_counts=True)[1])
    prec = 100.0 * tp / pp if pp else 100.0
    rec = 100.0 * tp / tt if tt else 100.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1


def run_case(n: int, mode: str, batch_s: float = 10.0, delay_s: float | None = None) -> dict[str, float | int | str]:
    """Link ``n`` synthetic tracklets in this process with ``mode``; returns the row of the table.

    ``incremental`` feeds the tracklets in order of ``end_time``, ``batch_s``
    seconds of stream a batch, with ``linking.decision_delay_s`` = ``delay_s``
    (``None``: the config default), and flushes the pending ones at the end.
    """
    from trackers.linking.incremental import IncrementalLinker
    from trackers.linking.offline import link_tracklets_detailed

    tracklets, truth = synthetic_tracklets(n)
    # the synthetic people re-enter cameras, and the tables compare methods, not policies: pin the
    # fixed threshold, same-camera links and plain cosine of the earlier tables
    cfg = LinkConfig(method="dense" if mode == "dense" else "sparse", threshold=0.4, same_camera="any",
                     camera_bias=False)
    if delay_s is not None:
        cfg = cfg.model_copy(update={"decision_delay_s": delay_s})
    t0, c0 = time.perf_counter(), time.process_time()
    merges = 0
    if mode == "incremental":
        linker = IncrementalLinker(cfg)
        order = sorted(range(n), key=lambda k: tracklets[k].end_time)
        start = 0
        while start < n:
            stop = start
            limit = tracklets[order[start]].end_time + batch_s
            while stop < n and tracklets[order[stop]].end_time < limit:
                stop += 1
            events = linker.add([tracklets[k] for k in order[start:stop]])
            merges += sum(e.kind == "identity_merged" for e in events)
            start = stop
        merges += sum(e.kind == "identity_merged" for e in linker.flush())  # still within decision_delay_s
        pred = np.array([linker.resolve(int(t.global_id or 0)) for t in tracklets])
    else:
        res = link_tracklets_detailed(tracklets, cfg)
        pred = res.global_ids
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    prec, rec, f1 = pairwise_prf(truth, pred)
    return {
        "n": n, "mode": mode, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "precision": round(prec, 2), "recall": round(rec, 2), "f1": round(f1, 2),
        "identities": int(len(np.unique(pred))), "true_identities": int(len(np.unique(truth))), "merges": merges,
        "delay_s": cfg.decision_delay_s if mode == "incremental" else None,
    }


def _subprocess_case(n: int, mode: str, delay_s: float | None = None) -> dict | None:
    cmd = [sys.executable, __file__, "--n", str(n), "--mode", mode, "--json"]
    if delay_s is not None:
        cmd += ["--delay", str(delay_s)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"# n={n} mode={mode} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, help="number of tracklets (default: the whole table, N = 1e3, 1e4, 1e5)")
    ap.add_argument("--mode", choices=MODES, help="one mode (default: all that fit)")
    ap.add_argument("--delay", type=float, metavar="S",
                    help="incremental: linking.decision_delay_s in seconds (default: the config's)")
    ap.add_argument("--json", action="store_true", help="run one case in this process, print one JSON line")
    args = ap.parse_args(argv)
    if args.json:
        if args.n is None or args.mode is None:
            ap.error("--json needs --n and --mode")
        print(json.dumps(run_case(args.n, args.mode, delay_s=args.delay)))
        return 0
    sizes = (args.n,) if args.n else SIZES
    modes = (args.mode,) if args.mode else MODES
    head = (f"{'N':>7} {'mode':<12} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'P %':>6} {'R %':>6} {'F1 %':>6}"
            f" {'ids':>6} {'true':>6} {'merges':>6}")
    print(head)
    print("-" * len(head))
    for n in sizes:
        rows: dict[str, dict] = {}
        for mode in modes:
            if mode == "dense" and n > DENSE_MAX_N:
                print(f"{n:>7} {mode:<12} skipped: N×N dense re-ranking needs ~{45 * n * n / 2**30:.0f} GiB")
                continue
            row = _subprocess_case(n, mode, args.delay)
            if row is None:
                continue
            rows[mode] = row
            print(f"{row['n']:>7} {row['mode']:<12} {row['wall_s']:>8.2f} {row['cpu_s']:>8.2f} {row['peak_mib']:>9.0f}"
                  f" {row['precision']:>6.2f} {row['recall']:>6.2f} {row['f1']:>6.2f}"
                  f" {row['identities']:>6} {row['true_identities']:>6}"
                  f" {row['merges']:>6}", flush=True)
        if "dense" in rows and "sparse" in rows:
            print(f"{'':>7} sparse - dense F1: {rows['sparse']['f1'] - rows['dense']['f1']:+.2f} points")
        if "sparse" in rows and "incremental" in rows:
            diff = rows["incremental"]["f1"] - rows["sparse"]["f1"]
            print(f"{'':>7} incremental - offline (sparse) F1: {diff:+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
