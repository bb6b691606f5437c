#!/usr/bin/env python
"""Print the README's excerpt of a run's ``trajectories.json``, lists shortened with ``…``.

The README shows this excerpt under "Output files"; it is pasted from this script's
output on a real run, never typed::

    mtmc run scenes/tud -o runs/tud --detector yolox:../shared/models/yolox_nano.onnx \\
        --reid ../shared/models/osnet_x0_25_msmt17.onnx
    python scripts/readme_excerpt.py runs/tud/trajectories.json

What is kept: every top-level key in file order (``schema_version``, ``run`` with its
``models`` and ``linking``, ``cameras``, ``identities``, ``merges``,
``tracklets_without_feature``), ``run.config`` as ``{…}``, the first ``--cameras``
cameras, the first identity seen by the most cameras (ties: the lowest id) with its
first ``--segments`` segments and their first ``--boxes`` boxes, and the first
tracklet without a feature. Every list that is cut ends with ``…``; a small object
(a box, a tracklet without feature) and a list of plain values stay on one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ELLIPSIS = "…"
INLINE_WIDTH = 100
"""An object or list whose one-line form is at most this long (and holds no nested objects) stays on one line."""


class _Cut:
    """Marks the place of the items left out of a list."""


CUT = _Cut()


def _shorten_list(items: list[Any], keep: int) -> list[Any]:
    return items[:keep] + ([CUT] if len(items) > keep else [])


def excerpt(doc: dict[str, Any], cameras: int = 2, segments: int = 2, boxes: int = 2) -> dict[str, Any]:
    """The shortened copy of a trajectories document (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "run":
            out[key] = {k: ({"…": None} if k == "config" else v) for k, v in value.items()}
        elif key == "cameras":
            out[key] = _shorten_list(list(value), cameras)
        elif key == "identities":
            ids = list(value)
            if ids:
                best = max(ids, key=lambda i: (len(i.get("cameras", [])), -i.get("global_id", 0)))
                ident = dict(best)
                ident["segments"] = [
                    {**s, "boxes": _shorten_list(list(s.get("boxes", [])), boxes)}
                    for s in ident.get("segments", [])[:segments]
                ] + ([CUT] if len(ident.get("segments", [])) > segments else [])
                out[key] = [ident] + ([CUT] if len(ids) > 1 else [])
            else:
                out[key] = []
        elif isinstance(value, list):
            out[key] = _shorten_list(value, 1)
        else:
            out[key] = value
    return out


def _scalar(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def _is_flat(v: Any) -> bool:
    """A value with no object inside (plain values and lists of them)."""
    if isinstance(v, dict):
        return False
    if isinstance(v, list):
        return all(not isinstance(x, (dict, list)) or (isinstance(x, list) and _is_flat(x)) for x in v)
    return True


def _one_line(v: Any) -> str:
    if v is CUT:
        return ELLIPSIS
    if isinstance(v, dict):
        if list(v) == ["…"]:
            return "{…}"
        return "{" + ", ".join(f"{_scalar(k)}: {_one_line(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_one_line(x) for x in v) + "]"
    return _scalar(v)


def render(v: Any, indent: int = 0) -> str:
    """JSON text of ``v`` with two-space indents, ``…`` for cut items and small values on one line."""
    pad, inner = " " * indent, " " * (indent + 2)
    if v is CUT:
        return ELLIPSIS
    if isinstance(v, dict):
        if list(v) == ["…"]:
            return "{…}"
        flat = all(_is_flat(x) for x in v.values())
        if not v or (flat and len(_one_line(v)) + indent <= INLINE_WIDTH and indent > 2):
            return _one_line(v)
        body = ",\n".join(f"{inner}{_scalar(k)}: {render(x, indent + 2)}" for k, x in v.items())
        return "{\n" + body + "\n" + pad + "}"
    if isinstance(v, list):
        if not v or (_is_flat(v) and len(_one_line(v)) + indent <= INLINE_WIDTH):
            return _one_line(v)
        # as in the README: a comma after every item but the last, "…" (items left out) last
        return "[\n" + ",\n".join(f"{inner}{render(x, indent + 2)}" for x in v) + "\n" + pad + "]"
    return _scalar(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="readme_excerpt.py", description=__doc__.splitlines()[0])
    p.add_argument("trajectories", type=Path, help="a run's trajectories.json (or its output folder)")
    p.add_argument("--cameras", type=int, default=2, help="cameras shown (default 2)")
    p.add_argument("--segments", type=int, default=2, help="segments of the identity shown (default 2)")
    p.add_argument("--boxes", type=int, default=2, help="boxes per segment shown (default 2)")
    args = p.parse_args(argv)
    path = args.trajectories / "trajectories.json" if args.trajectories.is_dir() else args.trajectories
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"readme_excerpt: error: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    print(render(excerpt(doc, args.cameras, args.segments, args.boxes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
