"""The lab around the method: runs and artifacts on disk, stages, jobs (queue, worker process,
history, machine lock), presets and ready runs, imports, the probe, projections, the sweep and the CLI."""
