"""Single-camera trackers (and, later, cross-camera linking)."""
