"""Cross-camera linking: tracklets of all cameras → global identities.

* :mod:`~trackers.linking.offline`: one pass over a finished run (cosine or
  k-reciprocal re-ranked distance, constrained average-linkage clustering,
  dense or sparse);
* :mod:`~trackers.linking.incremental`: tracklets linked as they end (live mode);
* :mod:`~trackers.linking.sparse_cluster`: clustering over a kNN candidate graph;
* :mod:`~trackers.linking.topology`: camera-pair rules (cannot-link, transit windows);
* :mod:`~trackers.linking.camera_bias`: each camera's mean feature removed before distances;
* :mod:`~trackers.linking.calibrate`: the ``threshold: auto`` choice from known negatives;
* :mod:`~trackers.linking.reentry`: same-camera re-entry evidence;
* :mod:`~trackers.linking.learn_topology`: camera topology learned from a first pass.

Nothing here imports the per-camera trackers of :mod:`trackers`.
"""
