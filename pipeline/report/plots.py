"""The report's two plots as inline SVG: the identity timeline and the histogram of linking distances.

The timeline is drawn directly as SVG (one ``<rect>`` per tracklet, with a
``<title>`` tooltip) so that 1,000 identities stay a few hundred kB; the histogram is
matplotlib's SVG backend with text kept as text.
"""

from __future__ import annotations

import io
from html import escape

import numpy as np

from pipeline.report.run_view import RunView

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


def camera_colours(cameras: list[str]) -> dict[str, str]:
    """A colour (``#rrggbb``) per camera id, in the given order (tab10, repeating)."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(cameras)}


def timeline_svg(view: RunView, colours: dict[str, str], width: int = 1100) -> str:
    """Identities × time (s, common clock): a row per identity sorted by first seen, one bar per
    tracklet coloured by camera, so a hand-over between cameras reads as a change of colour along a row.

    Returns:
        An ``<svg>`` element as a string (empty string for a run without identities).
    """
    idents = sorted(view.identities, key=lambda i: (i.start_time, i.global_id))
    if not idents:
        return ""
    t0 = min(i.start_time for i in idents)
    t1 = max(i.end_time for i in idents)
    span = max(t1 - t0, 1e-6)
    row = max(3.0, min(16.0, 2400.0 / len(idents)))
    left, top = 60, 20
    plot_w = width - left - 10
    height = int(top + row * len(idents) + 30)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">']
    for k in range(6):  # time axis
        x = left + plot_w * k / 5
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 26}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle">{t0 + span * k / 5:.1f} s</text>')
    for r, ident in enumerate(idents):
        y = top + r * row
        if row >= 8:
            parts.append(f'<text x="{left - 4}" y="{y + row * 0.8:.1f}" text-anchor="end">{ident.global_id}</text>')
        lanes = ident.cameras  # one lane per camera inside the row: overlapping cameras stay visible
        lane_h = max(1.0, (row - 1) / len(lanes))
        for s in ident.segments:
            x = left + plot_w * (s.start_time - t0) / span
            w = max(1.0, plot_w * (s.end_time - s.start_time) / span)
            tip = f"id {ident.global_id}: {s.camera} track {s.local_id}, {s.start_time:.1f}-{s.end_time:.1f} s"
            parts.append(f'<rect class="seg" x="{x:.1f}" y="{y + lanes.index(s.camera) * lane_h:.1f}" '
                         f'width="{w:.1f}" height="{lane_h:.1f}" fill="{colours.get(s.camera, "#000")}">'
                         f'<title>{escape(tip)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def distance_histogram_svg(view: RunView) -> str:
    """Histogram of each tracklet's smallest linking distance to another camera, split by whether
    its identity spans several cameras, with the linking threshold as a vertical line.

    Returns:
        An ``<svg>`` element as a string, or ``""`` when the run has no such distances
        (one camera, incremental linking, no ``features.npz``).
    """
    segs = [(s.nearest_distance, len(i.cameras) > 1) for i in view.identities for s in i.segments
            if s.nearest_distance is not None]
    if not segs:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.array([s[0] for s in segs])
    cross = np.array([s[1] for s in segs])
    threshold = view.linking.get("threshold")
    hi = max(float(d.max()), float(threshold or 0)) * 1.05 + 1e-6
    bins = np.linspace(0.0, hi, 31)
    with plt.rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(6.4, 2.8))
        ax.hist([d[cross], d[~cross]], bins=bins, stacked=True, color=["#2ca02c", "#999999"],
                label=["identity seen by several cameras", "one camera only"])
        if threshold is not None:
            ax.axvline(float(threshold), color="#d62728", linestyle="--", label=f"threshold {float(threshold):g}")
        ax.set_xlabel("smallest linking distance to a tracklet of another camera")
        ax.set_ylabel("tracklets")
        ax.legend(frameon=False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]
