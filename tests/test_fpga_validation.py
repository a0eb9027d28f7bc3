"""The published csynth data set: it loads, every point predicts, and the held-out Vivado HLS points stay close."""

from __future__ import annotations

import math

import pytest
import yaml

from hardware.errors import HwsimError
from simulator.validation.fpga import DATA, METRICS, evaluate, load_points, summary


@pytest.fixture(scope="module")
def rows():
    return evaluate()


def test_every_point_loads_and_predicts(rows):
    networks, points = load_points()
    assert len(rows) == len(points) >= 20
    assert {p["role"] for p in points} == {"calibration", "held_out"}
    for r in rows:
        assert all(math.isfinite(r["predicted"][m]) and r["predicted"][m] >= 0 for m in METRICS), r["point"]["id"]
        assert r["point"]["source"].split()[1].isalnum() and len(r["point"]["source"].split()[1]) == 40  # a commit


def test_held_out_vivado_points_within_goals(rows):
    # issue 17's goals on held-out points: latency/II/DSP within 15%, LUT/FF/BRAM within 30% (Vivado HLS points;
    # the Vitis HLS 2024.1 points are reported, and missed, in reports/fpga_validation.md)
    s = summary(rows, lambda p: p["tool"].startswith("Vivado"))["held_out"]
    assert s["latency"] <= 0.15 and s["ii"] <= 0.15 and s["dsp"] <= 0.15
    assert s["lut"] <= 0.30 and s["ff"] <= 0.30 and s["bram18"] <= 0.30


def test_reuse_sweep_shape(rows):
    # the tutorial's reuse sweep (xczu7ev, Vivado HLS 2019.1): at R = 256 the II is set by the 1024-weight layer
    # with 983 non-zeros and 4 multipliers, ceil(983 / 4) = 246, as reported, not R
    by_id = {r["point"]["id"]: r for r in rows}
    assert by_id["t2b-r256"]["predicted"]["ii"] == 246 == by_id["t2b-r256"]["point"]["reported"]["ii"]
    # the pruned model's DSPs at R = 1 are exactly its non-zero weights (+5 softmax multiplies)
    assert by_id["t3-zu3eg-pruned-r1"]["predicted"]["dsp"] == 256 + 512 + 256 + 40 + 5 == 1069


def test_bad_point_is_named(tmp_path):
    data = yaml.safe_load(DATA.read_text())
    del data["points"][0]["reported"]["lut"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HwsimError, match="t2b-r1.*lut"):
        load_points(path)
