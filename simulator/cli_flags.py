"""Command-line flags shared by several commands (``simulate``, ``inspect``, ``serve``): the precision flags."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from hardware.dtypes import parse_precision
from hardware.errors import HwsimError


def precision_options(default: str) -> Callable[[Callable], Callable]:
    """The --weights/--activations/--kv-cache precision overrides and ``--precision P`` for all three at once
    (``default`` says what applies without them)."""
    def add(func: Callable) -> Callable:
        @functools.wraps(func)
        def with_all(*args: Any, precision_all: str | None = None, **kwargs: Any) -> Any:
            if precision_all:
                parts = precision_all.split("/")  # W/A/KV, as sweeps and `compare --precision` write it
                if len(parts) not in (1, 3):
                    raise HwsimError(f"--precision {precision_all}: give one format (fp16) or weights/activations/kv "
                                     "(int8/fp16/fp16)")
                chosen = [parse_precision(p, "--precision") for p in parts] * (3 if len(parts) == 1 else 1)
                for key, value in zip(("weights", "activations", "kv_cache"), chosen, strict=True):
                    if kwargs.get(key) is None:
                        kwargs[key] = value
            return func(*args, **kwargs)

        for name, help_ in (("kv_cache", "KV cache"), ("activations", "activations"), ("weights", "weights")):
            with_all = click.option(f"--{name.replace('_', '-')}", name, metavar="P",
                                    help=f"Precision of {help_}: fp32, fp16, bf16, fp8, int8, int4, fp4"
                                    f"{', ternary' if name == 'weights' else ''} (default: {default})."
                                    )(with_all)
        with_all = click.option("--head-weights", "head_weights", metavar="P|same", default=None,
                                help=HEAD_HELP)(with_all)
        return click.option("--precision", "precision_all", metavar="P",
                            help="Precision of weights, activations and KV cache at once, or W/A/KV (int8/fp16/fp16); "
                                 "--weights, --activations, --kv-cache override it.")(with_all)
    return add


#: Help of ``--head-weights`` (simulate, inspect, serve).
HEAD_HELP = ("Precision of the embedding tables and the LM head's weight; 'same': as --weights [default: as --weights, "
             "but the model's own format when --weights is a quantised format (int8, int4, fp8, fp4, ternary), as "
             "AWQ, GPTQ and vLLM's FP8 keep lm_head in 16 bits].")
