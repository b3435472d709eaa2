"""The lab around the method, by concern: storage (runs and their files), pipeline (stages, probe,
presets), jobs (queue, worker, machine lock), sweep, cli and imports (models made elsewhere)."""
