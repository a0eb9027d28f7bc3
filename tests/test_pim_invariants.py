"""Physical invariants of the PIM targets beyond the channel count (``tests/test_pim.py`` checks that one in the default
run): more MAC lanes per bank, a larger global buffer, a faster or wider ASIC never make a pass slower, in the fast and
the command-level (detailed) mode, on pim-gpt's AiM timer and aim-32ch's instruction-level timer; latency finite and
positive, energy finite and >= 0. Heavy: about a minute."""

from __future__ import annotations

import copy
import math
import warnings

import pytest

from hardware.targets import load_target, target_from_dict
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import simulate

from conftest import EXAMPLES, scaled_preset_value

PATHS = [("channels",), ("mac", "lanes"), ("global_buffer",), ("asic", "clock"), ("asic", "vector_flops")]


def _node(data: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        data = data[key]
    return data


@pytest.mark.heavy
@pytest.mark.parametrize("model, preset", [("gpt2.onnx", "pim-gpt"), ("opt-125m.onnx", "aim-32ch")])
def test_pim_resources_never_slower(model: str, preset: str) -> None:
    m = Model(str(EXAMPLES / model))
    base = load_target(preset).model_dump(mode="json")
    for options in ({}, {"mode": "detailed"}):
        for phase, tokens in (("prefill", 16), ("decode", 64), ("decode", 512)):
            for path in PATHS:
                prev = None
                for factor in (0.5, 1, 2, 4):
                    data = copy.deepcopy(base)
                    node = _node(data, path)
                    value = node["value"]
                    node["value"] = scaled_preset_value(value, factor, whole=path[-1] != "clock")
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = simulate(m, target_from_dict(data, "invariants"), phase, 1, tokens, 2, Precision(), options)
                    assert math.isfinite(r.latency_s) and r.latency_s > 0 and math.isfinite(r.energy_j) and r.energy_j >= 0
                    if prev is not None:
                        assert r.latency_s <= prev * (1 + 1e-9), (options, phase, tokens, path, factor, prev, r.latency_s)
                    prev = r.latency_s
