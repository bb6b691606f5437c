"""Per-camera tracking (Kalman filters, assignment, SORT / ByteTrack / fused trackers) and, in
:mod:`trackers.linking`, cross-camera linking; the two never import each other."""
