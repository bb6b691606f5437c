#!/usr/bin/env python
"""Benchmark ``mtmc live``: K streams at their native rate for a fixed time.

For each K (default 1, 2, 4) a child process runs :func:`pipeline.live.run_live`
on K RTSP streams served on loopback by ``tests/rtsp_server.py`` (GStreamer,
system python; ``--transport file`` plays the clip as K video files in real
time instead, looping) and reports: input fps (decoded, all streams), processed
fps, dropped frames, p50/p95 latency from frame capture (decode) to its events,
peak memory (RSS), and RSS after ``--mem-early`` seconds vs at the end (growth
in %). The clip is made from real footage (default: PETS09-S2L1 at its native
768×576, 7 fps; frames played forward then backward so the scene never jumps).

Example (short runs, the shared ONNX models)::

    python scripts/benchmark_live.py --streams 1 2 4 --duration 30 \\
        --detector yolox:../shared/models/yolox_nano.onnx --reid ../shared/models/osnet_x0_25_msmt17.onnx

``--long`` runs 10 minutes and compares memory after 1 and after 10 minutes.
Targets: p95 latency < 1 s with 2 streams on a 2-core CPU; memory growth < 5 %.

``--minutes N`` is the soak test of bounded memory: one session per K of N
minutes on video files looped in real time (``live.loop_files``; ``--videos``
chooses them, one per stream, else the clip), with ``live.retention_s`` =
``--retention`` (default 120 s) so that identities are flushed to
``trajectories.jsonl`` during the run. Prints, per minute: RSS (MiB),
identities retained (in ``trajectories.json``) and flushed, frames processed;
and the ratio RSS(end) / RSS(minute 5) (target: within 10 %)::

    python scripts/benchmark_live.py --minutes 30 --streams 2 --retention 120 \
        --videos ../shared/data/MOT15/TUD-Campus/TUD-Campus.mp4 ../shared/data/MOT15/TUD-Stadtmitte/TUD-Stadtmitte.mp4 \
        --detector yolox:../shared/models/yolox_nano.onnx --reid ../shared/models/osnet_x0_25_msmt17.onnx
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SERVER = REPO / "tests" / "rtsp_server.py"
SHARED = REPO.parent / "shared"
DEFAULT_SEQ = SHARED / "data" / "MOT15" / "PETS09-S2L1"


def make_clip(seq: Path, out: Path, seconds: float, scale: float) -> tuple[Path, float]:
    """Encode an H.264 MP4 of at least ``seconds`` from a MOTChallenge sequence (ping-pong order).

    Returns the file and its frame rate (the sequence's, frames/s).

    Raises:
        FileNotFoundError: ``seq`` has no ``img1/*.jpg``.
    """
    import av
    import cv2

    from pipeline.mot_format import read_seqinfo

    info = read_seqinfo(seq / "seqinfo.ini")
    files = sorted((seq / info.im_dir).glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no frames in {seq / info.im_dir}")
    fps = int(round(info.frame_rate))
    order = files + files[-2:0:-1]
    n = int(seconds * fps) + 1
    w, h = int(info.width * scale) // 2 * 2, int(info.height * scale) // 2 * 2
    cache: dict[Path, object] = {}
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(fps), "crf": "26"}
        for i in range(n):
            f = order[i % len(order)]
            img = cache.get(f)
            if img is None:
                img = cv2.imread(str(f))
                if scale != 1.0:
                    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
                if len(cache) < 2 * len(files):
                    cache[f] = img
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out, float(fps)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(clip: Path, k: int) -> tuple[subprocess.Popen[str], list[str]]:
    """Serve ``clip`` as K RTSP mounts; returns the server process and the URLs.

    Raises:
        RuntimeError: the server could not start (GStreamer or python3-gi missing).
    """
    port = _free_port()
    mounts = [f"cam{i + 1}={clip}" for i in range(k)]
    proc = subprocess.Popen(["/usr/bin/python3", str(SERVER), "--port", str(port), *mounts],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if not proc.stdout.readline().startswith("READY"):
        proc.wait(timeout=10)
        raise RuntimeError(f"RTSP server failed: {proc.stderr.read().strip() if proc.stderr else ''}")
    return proc, [f"cam{i + 1}=rtsp://127.0.0.1:{port}/cam{i + 1}" for i in range(k)]


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _soak_sample(out: Path, minute: int, frames: list[float], offset: list[int]) -> dict:
    """One row of the soak table: RSS first (before parsing anything), then the output files' counts."""
    rss = _rss_mib()
    with (out / "events.jsonl").open("rb") as f:  # only the lines written since the last sample
        f.seek(offset[0])
        chunk = f.read()
    whole = chunk[: chunk.rfind(b"\n") + 1]
    offset[0] += len(whole)
    for line in whole.splitlines():
        ev = json.loads(line)
        if ev["event"] == "stats":
            frames[0] += sum(st["fps_out"] * ev["period_s"] for st in ev["streams"].values())
    try:
        doc = json.loads((out / "trajectories.json").read_text())
        retained, flushed = len(doc["identities"]), doc["run"]["linking"].get("flushed_identities", 0)
    except (OSError, ValueError, KeyError):
        retained = flushed = None
    jsonl = out / "trajectories.jsonl"
    lines = jsonl.read_bytes().count(b"\n") if jsonl.exists() else 0
    return {"minute": minute, "rss_mib": round(rss, 1), "retained": retained, "flushed": flushed,
            "jsonl_lines": lines, "frames": int(round(frames[0]))}


def soak_child(args: argparse.Namespace, cfg: object, sources: list[str], out: Path) -> list[dict]:
    """Run one session of ``args.minutes`` minutes, sampling every minute in a side thread; returns the rows."""
    from pipeline.live import run_live

    rows: list[dict] = []
    done = threading.Event()
    frames, offset = [0.0], [0]

    def sample() -> None:
        t0 = time.monotonic()
        minute = 1
        while not done.wait(max(0.0, t0 + 60.0 * minute - time.monotonic())):
            rows.append(_soak_sample(out, minute, frames, offset))
            print("SOAK " + json.dumps(rows[-1]), file=sys.stderr, flush=True)  # progress
            minute += 1

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        run_live(sources, cfg, out, duration_s=60.0 * args.minutes + 1.0, handle_signals=False, log=lambda m: None)
    finally:
        done.set()
        th.join()
    return rows


def child(args: argparse.Namespace) -> int:
    """Run one configuration in this process; print one JSON line of results."""
    from pipeline.config import load_config
    from pipeline.events import read_events
    from pipeline.live import run_live

    over: dict = {"live": {"stats_every_s": 5.0, "trajectories_every_s": 10.0, "loop_files": True}}
    if args.minutes:
        over["live"]["retention_s"] = args.retention
    if args.detector:
        over["detector"] = {"spec": args.detector}
    if args.reid:
        over["reid"] = {"spec": args.reid}
    cfg = load_config(args.config, over)
    server = None
    if args.transport == "rtsp":
        server, sources = start_server(Path(args.clip), args.k)
    else:
        videos = args.videos or [args.clip]
        sources = [f"cam{i + 1}={videos[i % len(videos)]}" for i in range(args.k)]
    out = Path(tempfile.mkdtemp(prefix="bench_live_"))
    if args.minutes:
        rows = soak_child(args, cfg, sources, out)
        shutil.rmtree(out, ignore_errors=True)
        print("RESULT " + json.dumps({"k": args.k, "soak": rows}), flush=True)
        return 0
    try:
        summary = run_live(sources, cfg, out, duration_s=args.duration, handle_signals=False, log=lambda m: None)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    stats = [e for e in read_events(out / "events.jsonl") if e["event"] == "stats" and e["memory_mb"] is not None]
    early = next((e["memory_mb"] for e in stats if e["time"] >= args.mem_early), None)
    end = stats[-1]["memory_mb"] if stats else None
    cams = summary.cameras.values()
    wall = summary.wall_s
    res = {
        "k": args.k,
        "seconds": round(wall, 1),
        "fps_in": round(sum(c["frames_in"] for c in cams) / wall, 2),
        "fps_out": round(sum(c["frames"] for c in cams) / wall, 2),
        "dropped": sum(c["dropped"] for c in cams),
        "dropped_pct": round(100.0 * sum(c["dropped"] for c in cams) / max(1, sum(c["frames_in"] for c in cams)), 1),
        "p50_s": max((c["latency_p50_s"] or 0.0) for c in cams),
        "p95_s": max((c["latency_p95_s"] or 0.0) for c in cams),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "mem_early_mb": early,
        "mem_end_mb": end,
        "growth_pct": round(100.0 * (end - early) / early, 1) if early and end else None,
        "reconnects": sum(c["reconnects"] for c in cams),
    }
    shutil.rmtree(out, ignore_errors=True)
    print("RESULT " + json.dumps(res), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run each K in a child process, print the table; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4], metavar="K", help="stream counts (1 2 4)")
    ap.add_argument("--duration", type=float, default=30.0, metavar="S", help="seconds per run (default 30)")
    ap.add_argument("--mem-early", type=float, default=10.0, metavar="S",
                    help="compare memory at this time with the end (default 10 s)")
    ap.add_argument("--long", action="store_true", help="10-minute runs, memory at 1 min vs 10 min")
    ap.add_argument("--minutes", type=int, default=0, metavar="N",
                    help="soak: N-minute runs on looped files, a table per minute (RSS, identities, frames)")
    ap.add_argument("--retention", type=float, default=120.0, metavar="S",
                    help="soak: live.retention_s (default 120 s, so that identities are flushed)")
    ap.add_argument("--videos", nargs="+", default=None, metavar="FILE",
                    help="soak / --transport file: video files, one per stream (cycled), instead of the clip")
    ap.add_argument("--sequence", type=Path, default=DEFAULT_SEQ, help="MOTChallenge sequence for the clip")
    ap.add_argument("--scale", type=float, default=1.0, help="resize the footage (default: native size)")
    ap.add_argument("--transport", choices=("rtsp", "file"), default="rtsp",
                    help="rtsp: loopback GStreamer server (default); file: video files played in real time")
    ap.add_argument("--detector", default=None, help="detector SPEC (default: the config's)")
    ap.add_argument("--reid", default=None, help="ReID SPEC (default: the config's)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--clip", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.long:
        args.duration, args.mem_early = 600.0, 60.0
    if args.minutes:
        args.transport = "file"
    if args.child:
        return child(args)

    tmp = Path(tempfile.mkdtemp(prefix="bench_live_clip_"))
    clip_s = args.duration + 30 if args.transport == "rtsp" else 60
    if args.videos:
        clip, fps = Path(args.videos[0]), 0.0
    else:
        clip, fps = make_clip(args.sequence, tmp / "clip.mp4", clip_s, args.scale)
    rows = []
    for k in args.streams:
        cmd = [sys.executable, __file__, "--child", "--k", str(k), "--clip", str(clip), "--duration",
               str(args.duration), "--mem-early", str(args.mem_early), "--transport", args.transport,
               "--minutes", str(args.minutes), "--retention", str(args.retention)]
        for opt, val in (("--detector", args.detector), ("--reid", args.reid), ("--config", args.config)):
            if val is not None:
                cmd += [opt, str(val)]
        if args.videos:
            cmd += ["--videos", *map(str, args.videos)]
        if args.minutes:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # progress (SOAK lines) on the way
            line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if r.returncode != 0 or line is None:
                print(f"K={k}: soak failed (exit {r.returncode})", file=sys.stderr)
                continue
            print_soak(json.loads(line[len("RESULT "):]), args)
            rows.append(line)
            continue
        t = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if r.returncode != 0 or line is None:
            print(f"K={k}: failed after {time.monotonic() - t:.0f} s: {r.stderr.strip()[-500:]}", file=sys.stderr)
            continue
        rows.append(json.loads(line[len("RESULT "):]))
    shutil.rmtree(tmp, ignore_errors=True)
    if args.minutes:
        return 0 if len(rows) == len(args.streams) else 1

    print(f"clip: {args.sequence.name}, {fps:g} fps per stream, transport {args.transport}, "
          f"{args.duration:g} s per run; latency = capture (decode) -> events written, worst stream")
    head = (f"{'K':>2} {'in fps':>7} {'out fps':>8} {'dropped':>12} {'p50 s':>6} {'p95 s':>6} {'peak MB':>8} "
            f"{'MB@' + format(args.mem_early, 'g') + 's':>9} {'MB@end':>7} {'growth':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        growth = f"{r['growth_pct']:+.1f}%" if r["growth_pct"] is not None else "-"
        print(f"{r['k']:>2} {r['fps_in']:>7.2f} {r['fps_out']:>8.2f} {r['dropped']:>5} ({r['dropped_pct']:>4.1f}%) "
              f"{r['p50_s']:>6.3f} {r['p95_s']:>6.3f} {r['peak_mb']:>8.0f} {r['mem_early_mb'] or 0:>9.0f} "
              f"{r['mem_end_mb'] or 0:>7.0f} {growth:>7}")
    return 0 if len(rows) == len(args.streams) else 1


def print_soak(res: dict, args: argparse.Namespace) -> None:
    """The soak table of one K: a row per minute and the ratio RSS(end) / RSS(minute 5)."""
    rows = res["soak"]
    print(f"soak: K={res['k']} streams, {args.minutes} min, live.retention_s {args.retention:g} s, "
          f"files looped in real time: {', '.join(Path(v).name for v in (args.videos or ['clip']))}")
    head = f"{'min':>4} {'RSS MiB':>8} {'retained':>9} {'flushed':>8} {'frames':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['minute']:>4} {r['rss_mib']:>8.1f} {r['retained'] if r['retained'] is not None else '-':>9} "
              f"{r['jsonl_lines']:>8} {r['frames']:>8}")
    at5 = next((r["rss_mib"] for r in rows if r["minute"] == 5), None)
    if at5 and rows:
        end = rows[-1]
        print(f"RSS(minute {end['minute']}) / RSS(minute 5) = {end['rss_mib']:.1f} / {at5:.1f} = "
              f"{end['rss_mib'] / at5:.3f} ({100.0 * (end['rss_mib'] / at5 - 1.0):+.1f} %)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
