"""Design-space exploration: sweep specs, a result store, parallel runners, Pareto fronts, outputs, comparisons.

One concept per module: :mod:`.spec` (the validated YAML spec and the points it spans), :mod:`.store` (the SQLite
store keyed by ``point_id``), :mod:`.runner` (evaluating points on a process pool or a dask cluster, with the grid,
random and Optuna strategies), :mod:`.pareto` (non-dominated fronts), :mod:`.outputs` (CSV, Parquet, plots,
summary) and :mod:`.compare` (one workload on several targets).
"""
