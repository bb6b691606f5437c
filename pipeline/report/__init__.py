"""``mtmc report OUT``: one self-contained HTML page about a finished run (``OUT/report.html``).

Sections: run summary, cameras (annotated thumbnails), evaluation against ground truth
(with ``gt``), timeline of identities across cameras, histogram of linking distances,
and the identities with the crops behind their features (and their purity with ``gt``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.atomic import write_text_atomic
from pipeline.report.images import collect_pictures
from pipeline.report.page import page
from pipeline.report.plots import camera_colours
from pipeline.report.purity import identity_purity
from pipeline.report.run_view import load_run
from pipeline.report.sections import (
    cameras_section,
    distances_section,
    eval_section,
    identities_section,
    summary_section,
    timeline_section,
)

REPORT_FILE = "report.html"

__all__ = ["REPORT_FILE", "ReportInfo", "build_report"]


@dataclass
class ReportInfo:
    """What :func:`build_report` wrote: path, size (bytes), build time (s), identities, crops, and the
    cameras without pictures (camera id → reason)."""

    path: Path
    bytes: int
    seconds: float
    identities: int
    crops: int
    missing: dict[str, str]


def build_report(out: str | Path, gt: list[str | Path] | None = None, cross_camera: bool = False,
                 max_crops: int = 6, path: str | Path | None = None) -> ReportInfo:
    """Write the report of the run in ``out`` (``out/report.html`` unless ``path`` is given).

    Args:
        out: an ``mtmc run`` output folder (``summary.json``, ``trajectories.json``, ideally ``features.npz``).
        gt: MOTChallenge ground truth as for ``mtmc eval --gt``: adds the eval table and per-identity purity.
        cross_camera: ground-truth ids are global across cameras (``mtmc eval --cross-camera``).
        max_crops: crops shown per identity (over its cameras).
        path: where to write the page.

    Raises:
        InputError: ``out`` is not a run folder, or ``gt`` cannot be read or matched to the cameras.
        OSError: the page cannot be written.
    """
    t = time.perf_counter()
    view = load_run(out)
    colours = camera_colours([c["id"] for c in view.cameras])
    pics = collect_pictures(view, max_crops=max_crops)
    sections = [("summary", "Run", summary_section(view)),
                ("cameras", "Cameras", cameras_section(view, pics, colours))]
    purity = None
    if gt:
        from pipeline.mot_eval import evaluate, match_gt_to_pred, processed_frames

        gt_files, pred = match_gt_to_pred(gt, view.out)
        result = evaluate(gt_files, pred, frames=processed_frames(view.out), cross_camera=cross_camera)
        sections.append(("evaluation", "Evaluation (mtmc eval)", eval_section(result)))
        purity = identity_purity(view.identities, gt_files, cross_camera)
    sections += [("timeline", "Timeline", timeline_section(view, colours)),
                 ("distances", "Linking distances", distances_section(view)),
                 ("identities", f"Identities ({len(view.identities)})",
                  identities_section(view, pics, colours, purity))]
    html = page(f"mtmc run report: {view.out.name}", sections)
    target = Path(path) if path is not None else view.out / REPORT_FILE
    write_text_atomic(target, html)
    return ReportInfo(target, len(html.encode("utf-8")), time.perf_counter() - t, len(view.identities),
                      sum(len(c) for c in pics.crops.values()), pics.missing)
