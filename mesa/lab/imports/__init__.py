"""Bring your own model: model files read as data, BackdoorBench results, and the import into a run."""
