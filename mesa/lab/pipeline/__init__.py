"""The pipeline of stages on a saved run (search, baseline, defend, detect, census), the probe,
trigger-space projections and presets (a whole pipeline as one JSON document)."""
