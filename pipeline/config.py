"""The one typed config of mtmc, with every default in one place.

``configs/default.yaml`` mirrors these defaults (a test keeps them equal); a
user's YAML overrides any subset. Unknown keys and out-of-range values raise
:class:`pipeline.errors.ConfigError` with the dotted key that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ConfigError, first_line


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
    device: str = Field("cpu", description="'cpu', 'cuda', 'cuda:N'")
    threads: int = Field(0, ge=0, description="torch/onnxruntime intra-op threads; 0 = all cores")


class TrackerConfig(_Strict):
    """Per-camera tracker (see ``trackers/factory.py`` for the types and their papers).

    Times are seconds taken from frame timestamps, so 7 fps and 30 fps video
    age tracks alike.
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
    device: str | None = Field(None, description="None = the detector's device")
    threads: int = Field(0, ge=0, description="intra-op threads; 0 = all cores")


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
    max_features: int = Field(8, ge=1, description="with 'quality': features per track at most")
    min_interval_s: float = Field(0.3, ge=0.0, description="with 'quality': seconds between embedded crops")
    min_height: float = Field(48.0, ge=0.0, description="boxes lower than this (px) are not averaged")
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="boxes scoring lower are not averaged")
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
    threshold: float | Literal["auto"] = Field(
        0.4,
        description=(
            "clustering stops above this distance; 'auto': set per run from its known negatives (tracklets of one "
            "camera at the same time, topology-incompatible pairs) at target_fmr (trackers/calibrate.py); 0.4 won "
            "held out (README 'Held-out identities')"
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
        0.4, gt=0.0, description="threshold 'auto' with too few negatives, and in incremental mode / live"
    )
    same_camera: Literal["never", "reentry", "any"] = Field(
        "never",
        description=(
            "links between tracklets of one camera: 'never'; 'reentry': only with re-entry evidence (distance "
            "<= reentry_threshold, gap >= reentry_min_gap_s, left and came back at the image border; offline "
            "only, 'never' in incremental mode and live); 'any': whenever not overlapping in time"
        ),
    )
    learn_topology: bool = Field(
        False,
        description=(
            "offline: learn overlapping camera pairs and transit windows from the first linking pass "
            "(trackers/learn_topology.py) and link again with them (entries of linking.topology win); "
            "OUT/topology.yaml is written either way"
        ),
    )
    learn_max_distance: float = Field(
        0.25, gt=0.0, le=2.0, description="topology learning: max cosine distance of a confident cross-camera match"
    )
    learn_min_pairs: int = Field(3, ge=1, description="topology learning: confident matches needed for a verdict")
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
            "(trackers/incremental.py, stable ids, merges recorded)"
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
        from trackers.topology import validate_topology  # late: trackers imports this module

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


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{source}: {key}: {msg} (see configs/default.yaml for valid keys and values)"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> MtmcConfig:
    """Build the config from defaults, an optional YAML file and CLI overrides.

    Args:
        path: YAML file with any subset of the keys of ``configs/default.yaml``.
        overrides: nested dict applied last (e.g. ``{"detector": {"conf": 0.3}}``).

    Returns:
        The validated :class:`MtmcConfig`.

    Raises:
        ConfigError: the file is missing or not YAML, a key is unknown, or a value
            is out of range; the message names the file and the dotted key.
    """
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (pass an existing YAML file to --config)")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({first_line(exc)})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections, got {type(loaded).__name__}")
        data = loaded
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return MtmcConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def default_config_dict() -> dict[str, Any]:
    """The defaults as a plain nested dict (what ``configs/default.yaml`` holds)."""
    return MtmcConfig().model_dump(by_alias=True)
