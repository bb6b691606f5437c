"""The sections of ``report.html``, each a function from the run (and its pictures) to HTML."""

from __future__ import annotations

from html import escape
from typing import Any

from pipeline.mot_eval import EvalResult
from pipeline.report.images import Pictures
from pipeline.report.page import Raw, table
from pipeline.report.plots import distance_histogram_svg, timeline_svg
from pipeline.report.purity import Purity
from pipeline.report.run_view import Identity, RunView


def summary_section(view: RunView) -> str:
    """Run summary: cameras, frames, speed, models, linking method and threshold with how it was set."""
    s, lk = view.summary, view.linking
    rows: list[tuple[str, Any]] = [
        ("output folder", str(view.out)),
        ("created", view.created or "-"),
        ("clock origin", s.get("clock_origin") or "unknown (cameras without start times: 0 = first frame)"),
        ("cameras", f"{len(view.cameras)} ({', '.join(c['id'] for c in view.cameras)})"),
        ("frames", f"{s.get('frames', 0)} in {s.get('wall_s', 0):.1f} s ({s.get('fps', 0):.1f} frames/s)"),
        ("stages (s)", ", ".join(f"{k} {v:.1f}" for k, v in (s.get("stages_s") or {}).items())),
        ("detector", s.get("detector")), ("ReID model", s.get("reid") or "none"),
        ("linking", lk.get("method", "-")),
        ("threshold", f"{lk['threshold']:g} ({lk.get('threshold_source', '')})" if "threshold" in lk else "-"),
        ("tracklets / identities", f"{lk.get('tracklets', s.get('tracks', 0))} tracklets -> "
                                   f"{s.get('identities', len(view.identities))} identities, "
                                   f"{s.get('cross_camera_identities', 0)} seen by several cameras"),
        ("status", "interrupted: partial results" if s.get("interrupted") else
         (f"failed cameras: {', '.join(s['failed_cameras'])}" if s.get("failed_cameras") else "complete")),
    ]
    return table(["", ""], rows, cls="summary")


def cameras_section(view: RunView, pics: Pictures, colours: dict[str, str]) -> str:
    """Per camera: the annotated thumbnail (the frame with most boxes), its numbers and status."""
    cards = []
    for c in view.cameras:
        cid = c["id"]
        img = (f'<img class="thumb" alt="{escape(cid)}" src="{pics.thumbnails[cid]}">' if cid in pics.thumbnails
               else f'<p class="muted">no thumbnail ({escape(pics.missing.get(cid, "no boxes"))})</p>')
        status = escape(c.get("status", "")) + (f": {escape(c['error'])}" if c.get("error") else "")
        cards.append(
            f'<div class="cam" data-camera="{escape(cid)}"><b><span class="chip" style="background:'
            f'{colours[cid]}">{escape(cid)}</span></b> {c.get("tracks", 0)} tracks, {c.get("boxes", 0)} boxes, '
            f'{c.get("frames", 0)} frames at {c.get("fps", 0):g} fps, {c.get("width", 0)}×{c.get("height", 0)} px, '
            f'{status}<br><span class="muted">{escape(str(c.get("source", "")))}</span>{img}</div>')
    return f'<div class="cams">{"".join(cards)}</div>'


def timeline_section(view: RunView, colours: dict[str, str]) -> str:
    """Identities × time coloured by camera, with a legend."""
    legend = " ".join(f'<span class="chip" style="background:{col}">{escape(c)}</span>' for c, col in colours.items())
    svg = timeline_svg(view, colours)
    return (f"<p>One row per identity (sorted by first seen), one bar per tracklet; a change of colour along a row "
            f"is a hand-over between cameras. {legend}</p>{svg or '<p>no identities</p>'}")


def distances_section(view: RunView) -> str:
    """Histogram of linking distances with the threshold."""
    svg = distance_histogram_svg(view)
    if not svg:
        why = "no features.npz" if view.store is None else "no cross-camera distances (one camera or incremental " \
                                                           "linking)"
        return f'<p class="muted">no histogram: {why}</p>'
    return ("<p>Each tracklet's smallest linking distance (the distance the clustering used: re-ranked when "
            "re-ranking ran, else cosine) to a tracklet of another camera. Tracklets left of the threshold can "
            f"join another camera's identity.</p>{svg}")


def eval_section(result: EvalResult) -> str:
    """The ``mtmc eval`` table (per camera, COMBINED, CROSS-CAMERA when computed)."""
    d = result.to_dict()
    rows_d = dict(d["cameras"])
    if d["cross_camera"] is not None:
        rows_d["CROSS-CAMERA"] = d["cross_camera"]
    names = list(next(iter(rows_d.values())))
    rows = [[cam, *(v[n] for n in names)] for cam, v in rows_d.items()]
    warn = "".join(f'<p class="bad">warning: {escape(w)}</p>' for w in d["warnings"])
    return table(["camera", *names], rows, cls="eval") + warn


def _crop_strip(ident: Identity, pics: Pictures, colours: dict[str, str]) -> Raw:
    imgs = [f'<img class="crop" loading="lazy" style="border-color:{colours.get(c.camera, "#000")}" '
            f'title="{escape(c.camera)} frame {c.frame}, {c.time:.1f} s" src="{c.uri}">'
            for c in pics.crops.get(ident.global_id, [])]
    return Raw(f'<div class="strip">{"".join(imgs)}</div>')


def _seen(ident: Identity, colours: dict[str, str]) -> Raw:
    parts = []
    for cam in ident.cameras:
        a, b = ident.seen(cam)
        parts.append(f'<span class="chip" style="background:{colours.get(cam, "#000")}">{escape(cam)}</span> '
                     f"{a:.1f}–{b:.1f} s")
    return Raw("<br>".join(parts))


def identities_section(view: RunView, pics: Pictures, colours: dict[str, str],
                       purity: dict[int, Purity] | None) -> str:
    """A sortable table, one row per identity with its crops per camera (the crops behind its feature)."""
    headers = ["id", "cameras", "seen (s, per camera)", "tracklets", "boxes", "first seen (s)"]
    if purity is not None:
        headers += ["purity %", "gt person", "pure"]
    headers.append("crops")
    rows = []
    for ident in view.identities:
        boxes = sum(len(s.frames) for s in ident.segments)
        row: list[Any] = [ident.global_id, len(ident.cameras), _seen(ident, colours), len(ident.segments), boxes,
                          round(ident.start_time, 1)]
        if purity is not None:
            p = purity.get(ident.global_id)
            pct = None if p is None or p.purity is None else round(100 * p.purity, 1)
            pure = Raw('<span class="ok">yes</span>' if p is not None and p.pure else
                       '<span class="bad">no</span>' if p is not None and p.purity is not None else "-")
            row += [(pct if pct is not None else "-", pct if pct is not None else -1),
                    p.gt_id if p is not None else None, (pure, int(bool(p and p.pure)))]
        row.append(_crop_strip(ident, pics, colours))
        rows.append(row)
    return ("<p>Click a column heading to sort. Crop borders are the camera's colour; hover a crop for its "
            "frame and time.</p>" + table(headers, rows, cls="identities", sortable=True, row_class="identity"))
