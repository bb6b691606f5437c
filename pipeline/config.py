"""The one typed config of mtmc, with every default in one place.

``configs/default.yaml`` mirrors these defaults (a test keeps them equal); a
user's YAML overrides any subset. Unknown keys and out-of-range values raise
:class:`pipeline.errors.ConfigError` with the dotted key that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.clock import format_utc, parse_time
from pipeline.devices import check_device
from pipeline.errors import ConfigError, first_line


def _window(value: Any, key: str) -> bool | tuple[float, float]:
    if isinstance(value, bool):
        return value
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{key}: expected false, true or [min_s, max_s] (a transit window of two numbers, s), "
                         f"got {value!r}")
    try:
        lo, hi = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise ValueError(f"{key}: [min_s, max_s] must be two numbers (seconds), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{key}: [min_s, max_s] must be finite, got {value!r}")
    if lo < 0 or hi < 0:
        raise ValueError(f"{key}: transit times must be >= 0 s, got {value!r}")
    if lo > hi:
        raise ValueError(f"{key}: min_s {lo} exceeds max_s {hi}: give the window as [min_s, max_s], shortest first")
    return lo, hi


def validate_topology(topology: Mapping[str, Any], key: str = "topology") -> dict[tuple[str, str], Any]:
    """Check a ``linking.topology`` mapping and return it as unordered camera pairs.

    Args:
        topology: ``{camera: {camera: false | true | [min_s, max_s]}}``; camera
            ids need not exist in a run (they may be absent from it).
        key: dotted config key used in error messages.

    Returns:
        ``{(cam_a, cam_b): False | True | (min_s, max_s)}`` with ``cam_a < cam_b``.

    Raises:
        ValueError: not a mapping of mappings, a camera paired with itself
            (the same-camera rule is fixed), a window that is not two finite
            numbers ``0 ≤ min_s ≤ max_s``, or ``A: {B: x}`` and ``B: {A: y}`` disagreeing.
            The message starts with the dotted key, e.g. ``linking.topology.cam1.cam2``.
    """
    if not isinstance(topology, Mapping):
        raise ValueError(f"{key}: expected a mapping camera -> {{camera: rule}}, got {type(topology).__name__}")
    pairs: dict[tuple[str, str], Any] = {}
    for a, row in topology.items():
        if not isinstance(row, Mapping):
            raise ValueError(f"{key}.{a}: expected a mapping camera -> rule, got {row!r}")
        for b, value in row.items():
            k = f"{key}.{a}.{b}"
            if str(a) == str(b):
                raise ValueError(f"{k}: a camera cannot be paired with itself (same-camera pairs follow "
                                 "linking.same_camera): remove this entry")
            rule = _window(value, k)
            pair = (str(a), str(b)) if str(a) < str(b) else (str(b), str(a))
            if pair in pairs and pairs[pair] != rule:
                raise ValueError(f"{k}: contradicts {key}.{b}.{a} ({pairs[pair]!r} vs {rule!r}): keep one of the two")
            pairs[pair] = rule
    return pairs



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DecodeConfig(_Strict):
    """Decoding: one reader thread per camera feeding a bounded queue."""

    queue_size: int = Field(16, ge=1, le=1024, description="frames buffered per camera")
    max_frames: int | None = Field(None, ge=1, description="stop each camera after this many frames")


class DetectorConfig(_Strict):
    """Person detection (backend chosen from ``spec``)."""

    spec: str = Field(
        "yolo11n.pt",
        description=(
            "ultralytics weights (*.pt or a model name it downloads), an ONNX file "
            "('yolox:F.onnx', 'yolov5:F.onnx', 'yolov8:F.onnx' or plain 'F.onnx' to "
            "auto-detect), or 'mot' for each sequence's det/det.txt ('mot:DIR' for "
            "DIR/<camera>.txt)"
        ),
    )
    conf: float = Field(0.1, ge=0.0, le=1.0, description="minimum person score kept")
    nms_iou: float = Field(0.45, gt=0.0, le=1.0, description="IoU threshold of NMS")
    imgsz: int | None = Field(None, ge=32, description="input size; None = the model's own")
    batch: int = Field(4, ge=1, le=256, description="frames per detector call (across cameras)")
    device: str = Field("cpu", description="'cpu', 'cuda', 'cuda:N' or 'mps'; unavailable → CPU with a warning")
    threads: int = Field(0, ge=0, description="torch/onnxruntime intra-op threads; 0 = all cores")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device(value)


_SORT_KEYS = frozenset({"type", "high_thresh", "match_iou", "max_age_s", "min_box_area", "min_hits"})
_BYTE_KEYS = _SORT_KEYS | {"low_thresh", "new_track_thresh", "second_match_iou", "tentative_match_iou"}
TRACKER_KEYS: dict[str, frozenset[str]] = {
    "sort": _SORT_KEYS,
    "bytetrack": _BYTE_KEYS,
    "fused": _BYTE_KEYS | {"appearance", "gating", "appearance_thresh", "meas_std", "proximity_iou", "feature_alpha",
                           "feature_interval_s", "cmc", "cmc_downscale"},
}
"""The ``tracker`` keys each ``tracker.type`` reads; another key set to a non-default value is an error."""


class TrackerConfig(_Strict):
    """Per-camera tracker (see ``trackers/factory.py`` for the types and their papers).

    Times are seconds taken from frame timestamps, so 7 fps and 30 fps video
    age tracks alike. Each type reads only its keys (:data:`TRACKER_KEYS`; the
    descriptions of ``fused``-only keys start with ``'fused':``): setting another
    one to a non-default value (e.g. ``cmc: ecc`` with ``type: sort``) is an error
    naming the tracker.
    """

    type: Literal["sort", "bytetrack", "fused"] = Field(
        "fused",
        description=(
            "'sort': SORT baseline (Bewley et al. 2016); 'bytetrack': ByteTrack two-stage IoU "
            "(Zhang et al. 2022); 'fused': ByteTrack stages + Mahalanobis gating + BoT-SORT "
            "IoU/appearance fusion + CMC, batched Kalman filter"
        ),
    )
    high_thresh: float = Field(0.5, ge=0.0, le=1.0, description="first-stage detection score")
    low_thresh: float = Field(0.1, ge=0.0, le=1.0, description="second-stage minimum score")
    new_track_thresh: float = Field(0.6, ge=0.0, le=1.0, description="score to start a track")
    match_iou: float = Field(0.2, ge=0.0, le=1.0, description="min IoU, first stage")
    second_match_iou: float = Field(0.5, ge=0.0, le=1.0, description="min IoU, low-score stage")
    tentative_match_iou: float = Field(0.3, ge=0.0, le=1.0, description="min IoU for tentative tracks")
    min_hits: int = Field(3, ge=1, description="hits before a tentative track is confirmed")
    max_age_s: float = Field(1.0, gt=0.0, description="delete a track lost for longer (s)")
    min_box_area: float = Field(10.0, ge=0.0, description="drop outputs smaller than this (px²)")
    appearance: bool = Field(
        False,
        description=(
            "'fused': use ReID features of the detections in association (needs a ReID model; "
            "costs extra ReID time, see README 'Trackers')"
        ),
    )
    gating: Literal["none", "appearance", "all"] = Field(
        "appearance",
        description=(
            "'fused': 95% Mahalanobis gate of the Kalman prediction; 'appearance': appearance may only "
            "vouch for pairs inside it; 'all': pairs outside are never matched"
        ),
    )
    appearance_thresh: float = Field(
        0.25, ge=0.0, le=1.0, description="'fused': max appearance distance (1 - cos)/2 a match may use"
    )
    meas_std: float = Field(
        0.05, gt=0.0, le=1.0, description="'fused': Kalman measurement std, fraction of the box width/height"
    )
    proximity_iou: float = Field(0.5, ge=0.0, le=1.0, description="'fused': min IoU for appearance to count")
    feature_alpha: float = Field(0.9, ge=0.0, lt=1.0, description="'fused': EMA weight of a track's old feature")
    feature_interval_s: float = Field(
        0.5, ge=0.0, description="'fused': embed a track's detection at least this often (s); ambiguous ones always"
    )
    cmc: Literal["none", "sparse_flow", "ecc"] = Field(
        "none", description="'fused': camera motion compensation; 'none' for fixed cameras"
    )
    cmc_downscale: int = Field(2, ge=1, le=16, description="'fused': frames shrunk by this factor for CMC")

    @model_validator(mode="after")
    def _thresholds(self) -> TrackerConfig:
        for key in sorted(self.model_fields_set - TRACKER_KEYS[self.type]):
            if getattr(self, key) != type(self).model_fields[key].default:
                users = [t for t, keys in TRACKER_KEYS.items() if key in keys]
                raise ValueError(f"tracker.{key}: not used by tracker.type {self.type!r} (only by "
                                 f"{', '.join(map(repr, users))}): remove it or change tracker.type")
        if self.low_thresh > self.high_thresh:
            raise ValueError(
                f"tracker.low_thresh ({self.low_thresh}) must not exceed "
                f"tracker.high_thresh ({self.high_thresh})"
            )
        return self


class ReidConfig(_Strict):
    """Person re-identification features (one per tracklet, MARS-style mean)."""

    spec: str = Field(
        "osnet_x0_25_msmt17",
        description=(
            "'none' (no ReID, no cross-camera linking), an ONNX file 'F.onnx', a torch "
            "state dict 'osnet_x0_25:F.pth' / 'osnet_x1_0:F.pth' / 'resnet50:F.pth', or a "
            "known model name (downloaded when online)"
        ),
    )
    batch: int = Field(32, ge=1, le=1024, description="crops per ReID forward pass")
    device: str | None = Field(None, description="'cpu', 'cuda', 'cuda:N', 'mps' or None = the detector's device")
    threads: int = Field(0, ge=0, description="intra-op threads; 0 = all cores")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        return None if value is None else check_device(value)


class TrackletConfig(_Strict):
    """Which crops are embedded and enter a tracklet's mean feature."""

    embed_policy: Literal["every", "every_k", "quality"] = Field(
        "quality",
        description=(
            "'every': every output box; 'every_k': every k-th box of a track; 'quality': "
            "boxes passing the quality filter, at most max_features per track, spaced by "
            "min_interval_s"
        ),
    )
    every_k: int = Field(5, ge=1, description="with embed_policy 'every_k'")
    max_features: int = Field(
        32, ge=1,
        description=(
            "with 'quality': features per track at most (32 won held out over 8 and 16: the mean then covers "
            "up to ~10 s of a track at min_interval_s 0.3, not its first 2.4 s)"
        ),
    )
    min_interval_s: float = Field(0.3, ge=0.0, description="with 'quality': seconds between embedded crops")
    min_height: float = Field(
        24.0, ge=0.0,
        description="boxes lower than this (px) are not averaged (24 and min_score 0.3 chosen leave-one-sequence-out "
        "against 48 and 0.5: small people's crops are noisy, but a mean of many beats a mean of one or two)",
    )
    min_score: float = Field(0.3, ge=0.0, le=1.0, description="boxes scoring lower are not averaged")
    border_margin: float = Field(2.0, ge=0.0, description="boxes this close to the image border (px) are cut")
    max_overlap: float = Field(
        0.3, ge=0.0, le=1.0, description="boxes overlapping another box by more IoU are not averaged"
    )
    min_length: int = Field(1, ge=1, description="shorter tracklets (boxes) are not linked: own global id")
    fallback: bool = Field(
        True,
        description=(
            "with 'quality': a track none of whose boxes passed the filter so far embeds its boxes at least "
            "fallback_min_height px tall and not overlapped, and uses their mean if no good crop ever comes"
        ),
    )
    fallback_min_height: float = Field(24.0, ge=0.0, description="with fallback: lowest box embedded (px)")
    interpolate_s: float = Field(
        0.5, ge=0.0, description="fill a track's gaps up to this long (s) with linearly interpolated boxes; 0 = off"
    )
    min_mean_score: float = Field(
        0.6, ge=0.0, le=1.0,
        description=(
            "offline: tracklets whose detections score lower on average are dropped (not written, not linked): "
            "mostly boxes that low-score matches kept alive; 0 = keep all (README 'Held-out identities')"
        ),
    )


class LinkConfig(_Strict):
    """Cross-camera linking of tracklets into global identities."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    enabled: bool = Field(True, description="link tracklets across cameras (needs ReID)")
    rerank: bool = Field(True, description="k-reciprocal re-ranking (Zhong et al., CVPR 2017)")
    rerank_min_tracklets: int = Field(
        200, ge=0, description="re-rank only with at least this many tracklets (few: the Jaccard term saturates)"
    )
    k1: int = Field(20, ge=1, description="k-reciprocal neighbourhood size (capped for few tracklets)")
    k2: int = Field(6, ge=1, description="local query expansion size")
    lambda_: float = Field(0.3, ge=0.0, le=1.0, alias="lambda", description="weight of the original distance")
    camera_bias: bool = Field(
        True,
        description=(
            "offline: subtract each camera's mean tracklet feature before distances (camera bias removal, "
            "trackers/linking/camera_bias.py); distances then sit higher, set threshold to match"
        ),
    )
    camera_bias_min_tracklets: int = Field(
        3, ge=1, description="camera_bias: cameras with fewer featured tracklets keep their features"
    )
    threshold: float | Literal["auto"] = Field(
        0.75,
        description=(
            "offline: clustering stops above this distance (after camera bias removal when camera_bias; 0.4 suits "
            "plain cosine); 'auto': set per run from its known negatives (tracklets of one camera at the same "
            "time, topology-incompatible pairs) at target_fmr (trackers/linking/calibrate.py); 0.75 with "
            "camera_bias won held out (README 'Held-out identities')"
        ),
    )
    target_fmr: float = Field(
        0.6, gt=0.0, lt=1.0,
        description=(
            "threshold 'auto': share of known-negative pairs allowed at or below it (they are hard negatives: "
            "neighbours in one view, so far more of them fall low than of cross-camera pairs; 0.6 best held out)"
        ),
    )
    auto_min_negatives: int = Field(
        20, ge=1, description="threshold 'auto': with fewer known-negative pairs, use threshold_fallback"
    )
    auto_min: float = Field(0.15, gt=0.0, description="threshold 'auto': never below this distance")
    auto_max: float = Field(0.8, gt=0.0, description="threshold 'auto': never above this distance")
    threshold_fallback: float = Field(
        0.75, gt=0.0,
        description="threshold 'auto' with too few known-negative pairs (on threshold's scale: 0.4 without camera_bias)"
    )
    incremental_threshold: float = Field(
        0.4, gt=0.0,
        description=(
            "incremental mode and live: cosine distance at which identities merge (plain cosine: camera_bias and "
            "'auto' need the whole run)"
        ),
    )
    merge_order: Literal["closest", "coverage"] = Field(
        "coverage",
        description=(
            "offline: which of two allowed merges goes first: 'closest' (smallest distance, classic clustering) or "
            "'coverage' (largest (threshold - distance) * sqrt(boxes_a * boxes_b): long tracklets are settled before "
            "short fragments take their place; won held out, README 'Held-out identities')"
        ),
    )
    same_camera: Literal["never", "fragments", "reentry", "any"] = Field(
        "fragments",
        description=(
            "links between tracklets of one camera: 'never'; 'fragments': the later starts at most "
            "same_camera_gap_s after the earlier ended and their distance is at most the same_camera_fmr quantile "
            "of the run's same-camera pairs seen at once (trackers/linking/fragments.py); 'reentry': only with "
            "re-entry evidence (distance <= reentry_threshold, gap >= reentry_min_gap_s, left and came back at the "
            "image border); 'any': whenever not overlapping in time. 'fragments' and 'reentry' are offline only "
            "('never' in incremental mode and live)"
        ),
    )
    same_camera_gap_s: float = Field(
        2.0, gt=0.0,
        description="'fragments': most seconds between a track's end and the start of the next one it may join",
    )
    same_camera_fmr: float = Field(
        0.01, gt=0.0, lt=1.0,
        description=(
            "'fragments': the same-camera distance bar is this quantile of the run's same-camera known negatives "
            "(two tracks of one camera at the same time)"
        ),
    )
    learn_topology: bool = Field(
        False,
        description=(
            "offline: learn overlapping camera pairs and transit windows from the first linking pass "
            "(trackers/linking/learn_topology.py) and link again with them (entries of linking.topology win); "
            "OUT/topology.yaml is written either way"
        ),
    )
    learn_max_distance: float = Field(
        0.25, gt=0.0, le=2.0,
        description=(
            "topology learning on tracklets without first-pass global ids (mutual nearest neighbours): max cosine "
            "distance of a match; after a first pass its identities are the matches"
        ),
    )
    learn_min_pairs: int = Field(3, ge=1, description="topology learning: matches needed for a verdict")
    reentry_threshold: float = Field(0.2, gt=0.0, description="'reentry': max cosine distance of the two tracklets")
    reentry_min_gap_s: float = Field(2.0, ge=0.0, description="'reentry': seconds between leaving and coming back")
    reentry_border: float = Field(
        0.05, ge=0.0, le=0.5, description="'reentry': exit and entry boxes within this fraction of the frame's border"
    )
    fragment_gap_s: float = Field(
        0.0, ge=0.0,
        description=(
            "'reentry': also join a track broken mid-image (gap up to this long, s; 0 = off) when the new one "
            "starts within fragment_radius box heights of where the old one ended"
        ),
    )
    fragment_radius: float = Field(1.0, gt=0.0, description="'reentry' fragments: max centre distance (box heights)")
    max_gap_s: float | None = Field(None, gt=0.0, description="tracklets further apart in time (s) cannot link")
    mode: Literal["offline", "incremental"] = Field(
        "offline",
        description=(
            "'offline': cluster all tracklets once at the end; 'incremental': link tracklets as they end "
            "(trackers/linking/incremental.py, stable ids, merges recorded)"
        ),
    )
    method: Literal["auto", "dense", "sparse"] = Field(
        "auto", description="offline: 'dense' N×N, 'sparse' kNN candidate graph (faiss), 'auto': dense up to dense_max"
    )
    dense_max: int = Field(2000, ge=1, description="'auto' method: dense up to this many tracklets with features")
    index: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="sparse method's kNN index; 'auto': exact 'flat' up to exact_max items, 'ivf' beyond"
    )
    exact_max: int = Field(20000, ge=1, description="'auto' index: exact search up to this many items")
    candidates: int = Field(
        20, ge=1, description="sparse: candidate neighbours per tracklet; incremental: identities searched per tracklet"
    )
    threads: int = Field(0, ge=0, description="faiss threads; 0 = all cores")
    window_s: float | None = Field(
        None, gt=0.0, description="compare only tracklets at most this far apart in time (s); None = all"
    )
    incremental_batch_s: float = Field(
        1.0, gt=0.0, description="incremental mode in 'mtmc run': stream seconds of ended tracklets per batch"
    )
    decision_delay_s: float = Field(
        10.0, ge=0.0,
        description=(
            "incremental: a tracklet gets its global id this many stream seconds after it ends, clustered with "
            "the tracklets that ended meanwhile (fewer wrong irreversible joins; adds this latency)"
        ),
    )
    topology: dict[str, dict[str, bool | list[float]]] = Field(
        default_factory=dict,
        description=(
            "camera pairs: CAM_A: {CAM_B: false} never link; CAM_A: {CAM_B: [min_s, max_s]} transit window "
            "between leaving one and entering the other; unlisted pairs: compatible, any gap"
        ),
    )

    @model_validator(mode="after")
    def _topology(self) -> LinkConfig:
        validate_topology(self.topology, "linking.topology")
        if self.auto_min > self.auto_max:
            raise ValueError(f"linking.auto_min ({self.auto_min}) must not exceed linking.auto_max ({self.auto_max})")
        return self


class OutputConfig(_Strict):
    """What ``mtmc run`` writes besides ``tracks/`` and ``summary.json``."""

    progress: bool = Field(True, description="progress bars per camera on a terminal")


class LiveConfig(_Strict):
    """``mtmc live``: streams, timeouts, reconnects and how often files are (re)written. Times in seconds."""

    sources: list[str] = Field(
        default_factory=list,
        description="streams when none is given on the command line: 'rtsp://...', 'http://...', a video file "
                    "(played in real time), or 'name=URL' to name the camera",
    )
    open_timeout_s: float = Field(10.0, gt=0.0, description="give up opening a stream after this long")
    read_timeout_s: float = Field(5.0, gt=0.0, description="give up a read that blocks this long, then reconnect")
    stall_s: float = Field(5.0, gt=0.0, description="watchdog: a stream with no frame for this long is down")
    backoff_initial_s: float = Field(0.5, gt=0.0, description="first reconnect delay (doubles per failure)")
    backoff_max_s: float = Field(30.0, gt=0.0, description="longest reconnect delay")
    backoff_jitter: float = Field(0.2, ge=0.0, le=1.0, description="reconnect delays vary by up to this fraction")
    realtime_files: bool = Field(True, description="play video files at their frame rate, as a live stream")
    loop_files: bool = Field(False, description="replay a video file from the start when it ends")
    trajectories_every_s: float = Field(10.0, gt=0.0, description="rewrite OUT/trajectories.json this often")
    stats_every_s: float = Field(5.0, gt=0.0, description="write a 'stats' event this often")
    link_after_s: float | None = Field(
        3.0, gt=0.0, description="link a track still in view after this long (None: only when it ends)"
    )
    retention_s: float | None = Field(
        3600.0, gt=0.0, description="identities not seen for this long go to OUT/trajectories.jsonl and leave "
                                    "memory (None: keep every identity in memory and in trajectories.json)"
    )


class ExecutorConfig(_Strict):
    """Where the per-camera stages run: this process (``local``) or one Ray actor per camera (``ray``)."""

    type: Literal["local", "ray"] = Field("local", description="'local' (this process) or 'ray' (needs the ray "
                                                                "extra: pip install -e \".[ray]\")")
    ray_address: str | None = Field(
        None, description="Ray cluster to join, e.g. '127.0.0.1:6379', 'ray://head:10001' or 'auto'; None: 'auto' "
                          "when RAY_ADDRESS is set, else a local Ray with this machine's CPUs",
    )
    num_cpus_per_camera: float = Field(1.0, gt=0.0, le=256.0, description="CPUs each camera actor asks Ray for")
    num_gpus_per_camera: float = Field(0.0, ge=0.0, le=16.0, description="GPUs (or fractions) each camera actor "
                                                                         "asks Ray for")
    chunk_frames: int = Field(32, ge=1, le=10_000, description="frames a camera actor processes per call; its "
                                                              "ended tracklets go to the driver after each call")

    @field_validator("ray_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value.strip())):
            raise ValueError(f"expected a Ray address such as 127.0.0.1:6379, ray://host:10001 or auto, got {value!r}")
        return value.strip() if value is not None else None


class CameraClockConfig(_Strict):
    """One camera's place on the run's common clock (``cameras.<id>``; README "Cameras and time").

    Give at most one of the two; without either, the container's ``creation_time`` is
    used when it has one, else the camera is taken to start with the others.
    """

    time_offset_s: float | None = Field(
        None, ge=0.0, allow_inf_nan=False,
        description="common-clock time (s) of the camera's first frame: seconds after the earliest camera's start",
    )
    start_time: str | None = Field(
        None, description="UTC of the camera's first frame, ISO 8601 (e.g. '2026-05-01T08:00:03.2Z')"
    )

    @field_validator("start_time", mode="before")
    @classmethod
    def _start_time(cls, value: Any) -> Any:
        if isinstance(value, datetime):  # YAML reads an unquoted ISO time as a datetime
            return format_utc(parse_time(value))
        if isinstance(value, str):
            parse_time(value)
        return value

    @model_validator(mode="after")
    def _one_of(self) -> CameraClockConfig:
        if self.time_offset_s is not None and self.start_time is not None:
            raise ValueError("give time_offset_s or start_time, not both (a start time fixes the offset)")
        return self


class MtmcConfig(_Strict):
    """Root config (``configs/default.yaml``)."""

    decode: DecodeConfig = DecodeConfig()
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    reid: ReidConfig = ReidConfig()
    tracklets: TrackletConfig = TrackletConfig()
    linking: LinkConfig = LinkConfig()
    output: OutputConfig = OutputConfig()
    live: LiveConfig = LiveConfig()
    executor: ExecutorConfig = ExecutorConfig()
    cameras: dict[str, CameraClockConfig] = Field(
        default_factory=dict, description="per camera id: time_offset_s or start_time (the common clock)"
    )


_HINT = "(see configs/default.yaml for valid keys and values)"
_WINDOW = "false (never link) or a [min_s, max_s] transit window of two numbers"
_EXPECTED = {"float": "a number", "int": "a whole number", "bool": "true or false", "string": "a string (quote it)",
             "list": "a list", "dict": "a mapping", "model": "a mapping of keys"}
_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def _is_tag(part: Any) -> bool:
    # pydantic names the member of a union that failed: ('b', 'bool'), ('b', 'list[float]'), ("literal['auto']")
    return isinstance(part, str) and (part in ("bool", "int", "float", "str", "[key]")
                                      or part.startswith(("list[", "dict[", "literal[")))


def _clean_loc(loc: tuple[Any, ...], errors: list[Any]) -> tuple[Any, ...]:
    """``loc`` without union-member tags (a tag only where another error has another tag: a camera may be 'bool')."""
    def tagged(i: int) -> bool:
        return loc[i] == "[key]" or (_is_tag(loc[i]) and any(
            len(e["loc"]) > i and e["loc"][:i] == loc[:i] and e["loc"][i] != loc[i] and _is_tag(e["loc"][i])
            for e in errors))
    return tuple(p for i, p in enumerate(loc) if not tagged(i))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _expected(err: Any) -> str | None:
    if err["type"] == "literal_error":
        return err["ctx"]["expected"]
    kind, _, how = err["type"].partition("_")
    return _EXPECTED.get(kind) if how in ("type", "parsing", "from_float") else None


def _section_keys(path: tuple[Any, ...], root: type[BaseModel]) -> list[str]:
    model: Any = root
    for part in path:
        if get_origin(model) is dict:  # cameras.<id>: the key is a name, the value a model
            model = get_args(model)[1]
            continue
        model = getattr(model, "model_fields", {}).get(part)
        model = model.annotation if model is not None else None
    fields = getattr(model, "model_fields", {})
    return [f.alias or name for name, f in fields.items()]


def _sentence(key: tuple[Any, ...], err: Any, alike: list[Any], root: type[BaseModel]) -> str:
    """What is wrong with the value at ``key``, as a plain sentence (``alike``: errors of the union members)."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, f"got {_show(err.get('input'))}"
    if kind == "extra_forbidden":
        from difflib import get_close_matches

        valid = _section_keys(key[:-1], root)
        close = get_close_matches(str(key[-1]), valid, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key ({guess}valid keys: {', '.join(valid)})"
    if kind == "missing":
        return "missing: this key is required"
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        return f"must be {words} {_num(ctx[bound])}, {got}"
    if key[:2] == ("linking", "topology") and len(key) == 4:
        return f"expected {_WINDOW}, {got}"
    if kind == "literal_error" and len(alike) == 1:
        return f"must be one of {ctx['expected'].replace(' or ', ', ')}, {got}"
    wanted = list(dict.fromkeys(_expected(e) for e in alike))
    if None not in wanted:
        return f"expected {' or '.join(str(w) for w in wanted)}, {got}"
    return f"{err['msg'].removeprefix('Input should be ')}, {got}"


def _given_in(overrides: dict[str, Any] | None, key: tuple[Any, ...]) -> bool:
    node: Any = overrides
    try:
        for part in key:
            node = node[part]
    except (KeyError, IndexError, TypeError):
        return False
    return bool(overrides)


def format_validation_error(err: ValidationError, source: str, overrides: dict[str, Any] | None = None,
                            root: type[BaseModel] | None = None, hint: str = _HINT) -> str:
    """One line for the first error: ``<source>: <dotted.key>: <plain sentence> <hint>``.

    Args:
        err: pydantic's error for a model validated from a dict.
        source: what the values came from (a file name); becomes ``command line``
            when the key came from ``overrides``.
        overrides: the values given on the command line, if any.
        root: the model validated (default :class:`MtmcConfig`), for the list of valid keys.
        hint: appended after the sentence (default: see configs/default.yaml).
    """
    root = root or MtmcConfig
    errors = err.errors()
    first = errors[0]
    key = _clean_loc(first["loc"], errors)
    dotted = ".".join(str(p) for p in key) or "<root>"
    if _given_in(overrides, key):
        source = "command line"
    if first["type"] in ("value_error", "assertion_error"):  # our validators: the message names its key
        text = str(first["ctx"]["error"])
        return f"{source}: {text if text.startswith(dotted) else f'{dotted}: {text}'} {hint}".rstrip()
    alike = [e for e in errors if _clean_loc(e["loc"], errors) == key]
    return f"{source}: {dotted}: {_sentence(key, first, alike, root)} {hint}".rstrip()


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _yaml_error(p: Path, text: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    pos = getattr(exc, "position", None)  # a ReaderError (bad character) has a position, no mark
    if mark is not None:
        line, col = mark.line, mark.column
    elif isinstance(pos, int):
        line, col = text.count("\n", 0, pos), pos - (text.rfind("\n", 0, pos) + 1)
    else:
        return f"{p}: not valid YAML ({first_line(exc)}): fix the syntax"
    problem = getattr(exc, "problem", None) or first_line(exc)
    cmark = getattr(exc, "context_mark", None)
    context = f"{exc.context} started at line {cmark.line + 1}, column {cmark.column + 1}; " if cmark else ""
    return (f"{p}: not valid YAML at line {line + 1}, column {col + 1}: {problem} ({context}fix it there: indent "
            "with spaces, put a space after each ':', close quotes and brackets)")


def _read_yaml(p: Path) -> Any:
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (pass an existing YAML file to --config)")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (bad byte at offset {exc.start}): save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read it ({exc.strerror or first_line(exc)}): check its permissions") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(p, text, exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections, got {type(loaded).__name__} "
                          "(write e.g. 'tracker:' then its keys indented below)")
    return loaded


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> MtmcConfig:
    """Build the config from defaults, an optional YAML file and CLI overrides.

    Args:
        path: YAML file (UTF-8) with any subset of the keys of ``configs/default.yaml``.
        overrides: nested dict applied last (e.g. ``{"detector": {"conf": 0.3}}``).

    Returns:
        The validated :class:`MtmcConfig`.

    Raises:
        ConfigError: one line: the file is missing, unreadable or not UTF-8; not
            YAML (with line and column); not a mapping; or a key is unknown or a
            value wrong (``<file>: <dotted.key>: <plain sentence> (see
            configs/default.yaml …)``; ``command line`` instead of the file when
            the value came from ``overrides``).
    """
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        data = _read_yaml(Path(path))
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return MtmcConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, overrides)) from None


def default_config_dict() -> dict[str, Any]:
    """The defaults as a plain nested dict (what ``configs/default.yaml`` holds)."""
    return MtmcConfig().model_dump(by_alias=True)
