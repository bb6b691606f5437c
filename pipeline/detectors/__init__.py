"""Detector backends behind one :class:`pipeline.detectors.base.Detector` interface."""
