"""Physical invariants of the FPGA target: more DSPs, a faster clock, more off-chip bandwidth, more BRAM or LUTs,
or a higher DSP efficiency never make a pass slower; more work (a longer prompt, a longer cached context) never makes
it faster; latency is finite and positive and energy finite and >= 0. The default run checks a small fixture on one
preset; ``pytest -m heavy`` the example models on several presets."""

from __future__ import annotations

import copy
import math
import warnings

import pytest

from hardware.targets import load_target, target_from_dict
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import simulate

from conftest import EXAMPLES, FIXTURES, scaled_preset_value

REL = 1e-9  # floating-point slack of "never slower"
FIELDS = ("clock", "dsp", "offchip_bandwidth", "bram36", "lut", "dsp_efficiency")


def _latency(model: Model, data: dict, phase: str, tokens: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = simulate(model, target_from_dict(data, "invariants"), phase, 1, tokens, 2, Precision(), {})
    assert math.isfinite(r.latency_s) and r.latency_s > 0, (phase, tokens, r.latency_s)
    assert math.isfinite(r.energy_j) and r.energy_j >= 0, (phase, tokens, r.energy_j)
    return r.latency_s, r.energy_j


def _scaled(base: dict, field: str, factor: float) -> dict:
    data = copy.deepcopy(base)
    value = data[field]["value"]
    data[field]["value"] = min(1.0, value * factor) if field == "dsp_efficiency" else \
        scaled_preset_value(value, factor, whole=field != "clock")
    return data


def check(model: Model, preset: str, cases: list[tuple[str, int]], factors: tuple[float, ...],
          fields: tuple[str, ...] = FIELDS, prompts: tuple[int, ...] = (8, 32, 128),
          contexts: tuple[int, ...] = (16, 128, 512)) -> None:
    base = load_target(preset).model_dump(mode="json")
    for phase, tokens in cases:
        for field in fields:
            times = [_latency(model, _scaled(base, field, f), phase, tokens)[0] for f in factors]
            for (f0, t0), (f1, t1) in zip(zip(factors, times), zip(factors[1:], times[1:])):
                assert t1 <= t0 * (1 + REL), f"{preset} {phase} {tokens}: {field} x{f0} -> x{f1} slower ({t0} -> {t1} s)"
    for phase in ("prefill", "decode"):
        lengths = prompts if phase == "prefill" else contexts
        times = [_latency(model, base, phase, n)[0] for n in lengths]
        assert times == sorted(times), f"{preset} {phase}: more tokens faster: {dict(zip(lengths, times, strict=True))}"


def test_fpga_resources_never_slower_on_a_fixture() -> None:
    check(Model(str(FIXTURES / "gpt2_ts.onnx")), "u55c", [("decode", 64)], (1.0, 2.0),
          fields=("clock", "dsp", "offchip_bandwidth"), prompts=(8, 32), contexts=(16, 128, 512))


@pytest.mark.heavy
@pytest.mark.parametrize("model, preset", [("gpt2.onnx", "u55c"), ("opt-125m.onnx", "vck190"),
                                           ("gpt2-medium.onnx", "zcu102"), ("gpt2.onnx", "u250")])
def test_fpga_resources_never_slower(model: str, preset: str) -> None:
    check(Model(str(EXAMPLES / model)), preset, [("prefill", 16), ("prefill", 128), ("decode", 64), ("decode", 512)],
          (0.25, 0.5, 1.0, 2.0, 4.0))
