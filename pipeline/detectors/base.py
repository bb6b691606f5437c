"""The one interface every detector backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from pipeline.types import Detections, Frame

PERSON_CLASS = 0  # COCO class id of "person"


class Detector(ABC):
    """Person detector over a batch of frames (of one or several cameras).

    Subclasses return only the person class, with scores at or above their
    confidence threshold, boxes in pixels of each original frame (``xyxy``).

    Attributes:
        name: short human-readable description (backend and weights file name).
        max_batch: how many frames one :meth:`detect` call takes at most in a
            single forward pass (1 for backends without batching).
    """

    name: str = "detector"
    max_batch: int = 1

    @abstractmethod
    def detect(self, frames: list[Frame]) -> list[Detections]:
        """Detect people in each frame.

        Args:
            frames: frames of any cameras; ``image`` is H×W×3 uint8 BGR (backends
                that read precomputed detections accept ``image is None``).

        Returns:
            One :class:`~pipeline.types.Detections` per input frame, same order.

        Raises:
            pipeline.errors.ModelError: the model fails on this input.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, files). Default: nothing."""
