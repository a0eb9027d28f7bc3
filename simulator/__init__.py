"""Simulator layer: the CLI, reports and (later) the event-driven engine and sweeps. Top floor: may use
``mapping`` and ``hardware``."""

__version__ = "0.1.0"
