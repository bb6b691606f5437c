"""Training checkpoints of the ReID trainer: what ``last.pth`` / ``best.pth`` hold, written atomically, read safely.

A checkpoint holds only tensors and plain types (readable with
``torch.load(..., weights_only=True)``): ``model`` (the training wrapper's state
dict), ``peer`` (mutual learning only), ``optimizer``, ``scheduler``, ``scaler``
(AMP only), ``epoch`` (epochs completed), ``step``, ``best_map``, ``config``
(plain dict), ``pids`` (original person id of each class index) and ``torch_rng``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.atomic import atomic_path
from pipeline.errors import ModelError
from reid.train_config import TrainConfig
from reid.weights import torch_load_tensors

NEEDED = ("model", "optimizer", "scheduler", "epoch", "step")


def make_checkpoint(nets: Sequence[nn.Module], opt: torch.optim.Optimizer, sched: Any, scaler: Any, epoch: int,
                    step: int, best_map: float, cfg: TrainConfig, pids: list[int]) -> dict[str, Any]:
    """The checkpoint dict (module docstring) after ``epoch`` completed epochs and ``step`` optimizer steps."""
    ck: dict[str, Any] = {
        "model": nets[0].state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "epoch": epoch, "step": step, "best_map": best_map, "config": cfg.to_dict(), "pids": list(pids),
        "torch_rng": torch.get_rng_state(),
    }
    if len(nets) == 2:
        ck["peer"] = nets[1].state_dict()
    if scaler is not None:
        ck["scaler"] = scaler.state_dict()
    return ck


def save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename (:func:`pipeline.atomic.atomic_path`).

    Raises:
        OSError: the folder cannot be written.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ``last.pth``/``best.pth`` with ``weights_only=True``.

    Raises:
        ModelError: missing, unreadable, or not a training checkpoint.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"resume checkpoint not found: {path}")
    ck = torch_load_tensors(path, "resume checkpoint", "resume from a last.pth or best.pth that training wrote")
    if not isinstance(ck, dict) or any(k not in ck for k in NEEDED):
        raise ModelError(f"{path}: not a training checkpoint (needs {', '.join(NEEDED)}); use init_weights for weights")
    return ck


def restore(ck: dict[str, Any], nets: Sequence[nn.Module], opt: torch.optim.Optimizer, sched: Any, scaler: Any,
            cfg: TrainConfig, num_classes: int) -> tuple[int, int, float]:
    """Load ``ck`` into the nets, optimizer, scheduler and scaler; returns ``(epoch, step, best_map)``.

    Raises:
        ModelError: the checkpoint is of another architecture or class count, or lacks
            the peer network that mutual learning needs.
    """
    saved = ck.get("config", {})
    if saved.get("arch") != cfg.arch or len(ck.get("pids", [])) != num_classes:
        raise ModelError(
            f"{cfg.resume}: checkpoint of {saved.get('arch')!r} with {len(ck.get('pids', []))} classes; "
            f"this run is {cfg.arch!r} with {num_classes}"
        )
    nets[0].load_state_dict(ck["model"])
    if len(nets) == 2:
        if "peer" not in ck:
            raise ModelError(f"{cfg.resume}: no peer network in the checkpoint (trained without mutual)")
        nets[1].load_state_dict(ck["peer"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    if scaler is not None and "scaler" in ck:
        scaler.load_state_dict(ck["scaler"])
    if isinstance(ck.get("torch_rng"), torch.Tensor):
        torch.set_rng_state(ck["torch_rng"])
    return int(ck["epoch"]), int(ck["step"]), float(ck.get("best_map", -1.0))
