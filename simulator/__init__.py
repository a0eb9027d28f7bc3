"""Simulator layer: the CLI, the event-driven engine, phases and totals, reports, design-space sweeps and the
validation reports. Top floor: may use ``mapping`` and ``hardware``."""

__version__ = "0.1.0"
