"""Mapping workloads onto PIM targets (PIM-GPT's scheme)."""
