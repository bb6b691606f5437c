"""mtmc pipeline: sources, detection, stage wiring, exports and the CLI."""
