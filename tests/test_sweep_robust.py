"""Sweeps that stay true under abuse: shared output folders, killed runs, resumed searches, huge grids, and the
constraint spellings the error message suggests."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from click.testing import CliRunner

from hardware.errors import HwsimError
from simulator.cli import main
from simulator.sweep.outputs import axis_label, front_table
from simulator.sweep.runner import STREAM_BATCH, SerialExecutor, SweepInterrupted, run_sweep
from simulator.sweep.spec import CONSTRAINT_FORMS, Objective, sweep_from_dict
from simulator.sweep.store import Store

from conftest import FIXTURES

MODEL = str(FIXTURES / "gpt2_ts.onnx")


def spec(**over) -> dict:
    data = {"name": "t", "model": MODEL, "target": "pim-gpt", "parameters": {"channels.value": [4, 8]},
            "workload": {"phase": ["decode"], "prompt_len": [16, 32]}}
    data.update(over)
    return data


def test_two_specs_in_one_folder_keep_their_own_outputs(tmp_path):
    out = tmp_path / "out"
    for name, channels in (("first", [4, 8]), ("second", [16])):
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_dump(spec(name=name, parameters={"channels.value": channels})))
        res = CliRunner().invoke(main, ["sweep", str(f), "--out", str(out), "--workers", "1", "--quiet"])
        assert res.exit_code == 0, res.output
    top = (out / "results.csv").read_text().splitlines()
    assert len(top) == 1 + 4  # the first spec's 2 x 2 points, not overwritten
    mine = (out / "second" / "results.csv").read_text().splitlines()
    assert len(mine) == 1 + 2
    assert "second" in res.output and "holds the outputs of sweep 'first'" in res.output


def test_a_killed_run_reads_killed_not_running(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Store(tmp_path / "sweep.sqlite") as st:
        st.db.execute("INSERT INTO runs (spec_hash, started, status, pid, host) VALUES ('h', 0, 'running', ?, ?)",
                      (dead.pid, __import__("socket").gethostname()))
        st.db.execute("INSERT INTO runs (spec_hash, started, status) VALUES ('old', 0, 'running')")  # pre-pid store
        st.db.commit()
        assert st.last_status("h") == "killed"
        assert st.last_status("old") == "killed"
        run = st.start_run("live")
        assert st.last_status("live") == "running"  # this process is alive
        st.end_run(run, "finished")


def test_resumed_nsga2_equals_a_clean_run(tmp_path):
    data = spec(parameters={"channels.value": [2, 4, 8, 16], "asic.vector_flops.value": [64, 128, 256]},
                workload={"prompt_len": [16, 32, 64]}, strategy="nsga2", trials=14, parallel_trials=4, seed=3)
    clean = run_sweep(sweep_from_dict(data), tmp_path / "clean", SerialExecutor(), progress=False)
    with pytest.raises(SweepInterrupted):
        run_sweep(sweep_from_dict(data), tmp_path / "cut", SerialExecutor(), progress=False, interrupt_after=5)
    resumed = run_sweep(sweep_from_dict(data), tmp_path / "cut", SerialExecutor(), resume=True, progress=False)
    assert [r["point_id"] for r in resumed.rows] == [r["point_id"] for r in clean.rows]
    assert resumed.computed + 5 == clean.computed  # the 5 done before the cut are not simulated again
    assert resumed.total == clean.total == 14
    assert resumed.computed + resumed.cached == 14


def test_a_million_point_grid_starts_at_once_and_streams(tmp_path):
    data = spec(parameters={"channels.value": list(range(1, 101))},
                workload={"phase": ["decode"], "prompt_len": list(range(16, 116)), "batch": list(range(1, 101))})
    sw = sweep_from_dict(data)
    assert sw.size == 1_000_000
    with pytest.raises(SweepInterrupted):
        run_sweep(sw, tmp_path, SerialExecutor(), progress=False, interrupt_after=1)
    with Store(tmp_path / "sweep.sqlite") as st:
        assert st.count() == 1
        assert 0 < len(st.members(sw.spec_hash)) <= 4 * STREAM_BATCH  # not the whole grid up front


@pytest.mark.parametrize("form", [*CONSTRAINT_FORMS, "fits_memory: true", "'latency_s <= 0.01'", {"fits_memory": True},
                                  {"energy_j": "< 2"}])
def test_every_suggested_constraint_spelling_is_accepted(form):
    text = yaml.safe_load(form) if isinstance(form, str) and form.startswith("{") else form
    sw = sweep_from_dict(spec(constraints=[text]))
    assert len(sw.spec.constraints) == 1


def test_the_constraint_error_suggests_only_what_parses():
    with pytest.raises(HwsimError) as exc:
        sweep_from_dict(spec(constraints=["latency <= 1"]))
    assert "no metric 'latency'" in str(exc.value)
    with pytest.raises(HwsimError) as exc:
        sweep_from_dict(spec(constraints=["latency_s <= 10 ms"]))
    msg = str(exc.value)
    for form in CONSTRAINT_FORMS:
        assert form in msg
        test_every_suggested_constraint_spelling_is_accepted(form)


def test_front_table_names_each_design_even_when_the_front_is_one_point():
    row = {"point_id": "abc", "channels.value": 8, "prompt_len": 32, "latency_s": 1e-3, "energy_j": 2e-3,
           "tokens_per_j": 500.0}
    table = front_table([row], ["channels.value", "prompt_len"], [Objective(metric="latency_s")])
    assert "channels.value" in table and "prompt_len" in table and " 8 " in table + " "


def test_axis_labels_give_units_and_direction_in_words():
    assert axis_label("latency_s", "min") == "latency (s), lower is better"
    assert "(min)" not in axis_label("energy_j", "min") and "(J)" in axis_label("energy_j", "min")


def test_bad_sweep_invocations_are_one_line_errors(tmp_path):
    good = tmp_path / "s.yaml"
    good.write_text(yaml.safe_dump(spec(parameters={"channels.value": [4]}, workload={"prompt_len": [16]})))
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "sweep.sqlite").write_text("not sqlite")
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"garbage")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec(model=str(bad_model), parameters={"channels.value": [4]},
                                       workload={"prompt_len": [16]})))
    cases = [([str(good), "--workers", "0"], "--workers must be >= 1"),
             ([str(good), "--out", str(tmp_path / "a_file" / "x")], "is a file, so no folder"),
             ([str(good), "--out", str(tmp_path / "a_file")], "is a file, not a folder"),
             ([str(good), "--out", str(tmp_path / "junk")], "not a hwsim sweep store"),
             ([str(bad), "--out", str(tmp_path / "o"), "--workers", "1"], "every point of")]
    for args, text in cases:
        res = CliRunner().invoke(main, ["sweep", *args, "--quiet"])
        assert res.exit_code == 2, (args, res.output)
        errors = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and text in errors[0], (args, res.output)
