"""Validation reports: each module regenerates one file in ``reports/`` with one command."""
