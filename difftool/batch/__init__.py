"""`difftool batch`: many jobs from a file, resumable, over every process and device accelerate gives.

The package's modules, one concern each: `jobs` (reading JOBS, grids, stable job ids), `manifest` (the
append-only record of what was made, and the per-job locks), `processes` (rank, world, splitting and sharing
through accelerate; the `--processes` launcher), `progress` (the overall bar, result lines and the summary on
rank 0), `runner` (making the jobs through the engine). Nothing here imports torch at module level.
"""
