"""Design-space sweeps: spec validation, grid, store/resume, dask, Pareto front, cache, compare, CLI."""

from __future__ import annotations

import csv
import itertools
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner

from hardware.errors import HwsimError
from simulator.cli import main
from simulator.sweep.pareto import dominates, pareto_front
from simulator.sweep.runner import SerialExecutor, SweepInterrupted, run_sweep
from simulator.sweep.spec import Objective, sweep_from_dict
from simulator.sweep.store import Store

from conftest import FIXTURES, ROOT

MODEL = str(FIXTURES / "gpt2_ts.onnx")


def spec(**over) -> dict:
    data = {"name": "t", "model": MODEL, "target": "pim-gpt",
            "parameters": {"channels.value": [4, 8]},
            "workload": {"phase": ["decode"], "prompt_len": [16, 32, 64]},
            "objectives": {"latency_s": "min", "energy_j": "min"}}
    data.update(over)
    return data


@pytest.mark.parametrize("over, field", [
    ({"objectives": {"latency": "min"}}, "objectives.0.metric"),
    ({"objectives": []}, "objectives"),  # found by the sweep-spec fuzz: an IndexError before
    ({"objectives": [{"metric": "energy_j", "direction": "down"}]}, "objectives.0.direction"),
    ({"parameters": {"chanels.value": [4]}}, "parameters.chanels.value"),
    ({"parameters": {"channels.value": [-1]}}, "parameters.channels.value"),
    ({"workload": {"batch": [0]}}, "workload.batch"),
    ({"workload": {"precision": ["fp12"]}}, "workload.precision"),
    ({"constraints": ["latency_s << 3"]}, "constraints"),
    ({"strategy": "random"}, "trials"),
    ({"target": "no-such-gpu"}, "target"),
    ({"colour": "red"}, "colour"),
])
def test_spec_errors_name_the_field(over, field):
    with pytest.raises(HwsimError) as exc:
        sweep_from_dict(spec(**over), "s.yaml")
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"field '{field}" in msg, msg


def test_grid_2x3_gives_6_unique_points(tmp_path):
    sw = sweep_from_dict(spec())
    assert sw.size == 6
    out = run_sweep(sw, tmp_path, SerialExecutor(), progress=False)
    ids = [r["point_id"] for r in out.rows]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert out.computed == 6 and out.cached == 0
    assert {(r["channels.value"], r["prompt_len"]) for r in out.rows} == set(itertools.product([4, 8], [16, 32, 64]))
    assert all(r["latency_s"] > 0 and r["energy_j"] > 0 and r["fits_memory"] for r in out.rows)
    # the id is stable: a fresh Sweep object builds the same ids
    again = sweep_from_dict(spec())
    assert sorted(again.point(c).point_id for c in again.grid()) == sorted(ids)


def test_interrupted_sweep_resumes_every_point_once(tmp_path):
    sw = sweep_from_dict(spec())
    with pytest.raises(SweepInterrupted) as exc:
        run_sweep(sw, tmp_path, SerialExecutor(), progress=False, interrupt_after=2)
    assert exc.value.done == 2
    with Store(tmp_path / "sweep.sqlite") as st:
        assert st.count() == 2
        assert st.last_status(sw.spec_hash) == "interrupted"
    out = run_sweep(sweep_from_dict(spec()), tmp_path, SerialExecutor(), resume=True, progress=False)
    assert out.computed == 4 and out.cached == 2
    ids = [r["point_id"] for r in out.rows]
    assert len(ids) == 6 == len(set(ids))
    with Store(tmp_path / "sweep.sqlite") as st:
        assert st.count() == 6
        assert st.last_status(sw.spec_hash) == "finished"


def test_dask_local_cluster_matches_serial(tmp_path):
    from distributed import Client, LocalCluster

    serial = run_sweep(sweep_from_dict(spec()), tmp_path / "serial", SerialExecutor(), progress=False)
    from simulator.sweep.runner import DaskExecutor

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ex = DaskExecutor(client)
        out = run_sweep(sweep_from_dict(spec()), tmp_path / "dask", ex, progress=False)
        ex.close()
    assert out.computed == 6
    by_id = {r["point_id"]: r for r in serial.rows}
    assert set(by_id) == {r["point_id"] for r in out.rows}
    for r in out.rows:
        assert r["latency_s"] == pytest.approx(by_id[r["point_id"]]["latency_s"], rel=1e-12)
        assert r["energy_j"] == pytest.approx(by_id[r["point_id"]]["energy_j"], rel=1e-12)


def test_scheduler_hands_out_every_point_once_grouped_by_workload():
    from simulator.sweep.runner import _group_key, _Scheduler

    sw = sweep_from_dict(spec(parameters={"channels.value": [2, 4, 8, 16, 32]}))
    points = [sw.point(c) for c in sw.grid()]
    sched = _Scheduler(points, workers=2, chunked=True)
    first = [sched.next(), sched.next()]  # one chunk per worker, each from a different workload
    assert _group_key(first[0][0]) != _group_key(first[1][0])
    handed = [p for c in first for p in c]
    for worker, chunk in zip(("a", "b"), first):
        sched.observe(worker, chunk, [{"sim_s": 0.001} for _ in chunk])
    switches = {"a": 0, "b": 0}
    last = {"a": _group_key(first[0][0]), "b": _group_key(first[1][0])}
    while True:
        progressed = False
        for worker in ("a", "b"):
            chunk = sched.next(worker)
            if not chunk:
                continue
            progressed = True
            assert len({_group_key(p) for p in chunk}) == 1  # a chunk never mixes workloads
            switches[worker] += _group_key(chunk[0]) != last[worker]
            last[worker] = _group_key(chunk[0])
            sched.observe(worker, chunk, [{"sim_s": 0.001} for _ in chunk])
            handed += chunk
        if not progressed:
            break
    assert sorted(p.point_id for p in handed) == sorted(p.point_id for p in points)
    assert sum(switches.values()) <= 3  # 3 workloads over 2 workers: few switches, not one per chunk
    assert _Scheduler(points, workers=2, chunked=False).next() == points[:1]


def test_pool_chunks_match_serial_and_resume(tmp_path):
    from simulator.sweep.runner import PoolExecutor

    data = spec(parameters={"channels.value": [4, 8, 16]})
    serial = run_sweep(sweep_from_dict(data), tmp_path / "serial", SerialExecutor(), progress=False)
    ex = PoolExecutor(2)
    try:
        with pytest.raises(SweepInterrupted) as exc:
            run_sweep(sweep_from_dict(data), tmp_path / "pool", ex, progress=False, interrupt_after=1)
        assert 1 <= exc.value.done < 9  # whole chunks were committed, the rest was not
        out = run_sweep(sweep_from_dict(data), tmp_path / "pool", ex, resume=True, progress=False)
    finally:
        ex.close()
    assert out.computed == 9 - exc.value.done and out.cached == exc.value.done
    assert [r["point_id"] for r in out.rows] == [r["point_id"] for r in serial.rows]  # the spec's order
    for a, b in zip(out.rows, serial.rows):
        assert {k: v for k, v in a.items() if k != "sim_s"} == {k: v for k, v in b.items() if k != "sim_s"}


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_matches_brute_force(seed):
    rng = random.Random(seed)
    objectives = [Objective(metric="latency_s", direction="min"), Objective(metric="tokens_per_j", direction="max"),
                  Objective(metric="energy_j", direction="min")][: 2 + seed % 2]
    rows = [{"point_id": str(i), "latency_s": rng.choice([rng.random(), 0.5]), "tokens_per_j": rng.random(),
             "energy_j": rng.random()} for i in range(150)]
    rows.append({"point_id": "dup", **{k: v for k, v in rows[0].items() if k != "point_id"}})
    rows.append({"point_id": "failed", "latency_s": None, "tokens_per_j": None, "energy_j": None})
    front = {r["point_id"] for r in pareto_front(rows, objectives)}

    def vec(r):
        return [r[o.metric] * (1 if o.direction == "min" else -1) for o in objectives]

    ok = [r for r in rows if r["latency_s"] is not None]
    brute = {r["point_id"] for r in ok if not any(dominates(vec(s), vec(r)) for s in ok)}
    assert front == brute
    assert ("0" in front) == ("dup" in front)


def test_repeated_points_hit_the_cache(tmp_path):
    data = spec(parameters={"channels.value": [8, 8.0, 16]}, workload={"prompt_len": [32], "gen_len": [1, 7]})
    sw = sweep_from_dict(data)
    first = run_sweep(sw, tmp_path, SerialExecutor(), progress=False)
    assert first.total == 2 and first.computed == 2  # 8 == 8.0, gen_len ignored by decode
    second = run_sweep(sweep_from_dict(data), tmp_path, SerialExecutor(), progress=False)
    assert second.computed == 0 and second.cached == 2
    # another spec sharing points only computes the new ones
    other = sweep_from_dict(spec(parameters={"channels.value": [8, 32]}, workload={"prompt_len": [32]}))
    third = run_sweep(other, tmp_path, SerialExecutor(), progress=False)
    assert third.computed == 1 and third.cached == 1


def test_optuna_nsga2_within_budget(tmp_path):
    sw = sweep_from_dict(spec(parameters={"channels.value": [2, 4, 8, 16], "asic.vector_flops.value": [64, 256]},
                              strategy="nsga2", trials=10, constraints=["fits_memory"]))
    out = run_sweep(sw, tmp_path, SerialExecutor(), progress=False)
    assert 1 <= len(out.rows) <= 10 and out.computed + out.cached == 10
    assert len({r["point_id"] for r in out.rows}) == len(out.rows)
    assert pareto_front(out.rows, sw.spec.objectives, sw.spec.constraints)


def test_compare_two_targets(tmp_path):
    res = CliRunner().invoke(main, ["compare", MODEL, "--targets", "a100-80gb,pim-gpt", "--prompt-len", "32",
                                    "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "a100-80gb" in res.output and "pim-gpt" in res.output
    rows = list(csv.DictReader(open(tmp_path / "compare.csv")))
    assert [r["target"] for r in rows] == ["a100-80gb", "pim-gpt"]
    assert all(float(r["latency_s"]) > 0 for r in rows)
    assert (tmp_path / "compare.png").stat().st_size > 0
    (tmp_path / "a_file").write_text("")  # an --out under a file is refused before anything is simulated
    bad = CliRunner().invoke(main, ["compare", MODEL, "--targets", "a100-80gb", "--out", str(tmp_path / "a_file" / "x")])
    assert bad.exit_code == 2 and bad.output.startswith("error: --out") and "is a file" in bad.output
    assert "a100-80gb " not in bad.output


def test_cli_sweep_writes_outputs(tmp_path):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(spec(constraints=[{"fits_memory": True}, "latency_s <= 1"])))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["sweep", str(spec_file), "--out", str(out), "--workers", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "Pareto front" in res.output
    for name in ("results.csv", "results.parquet", "pareto.csv", "pareto.png", "summary.md", "sweep.sqlite"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 6 and len({r["point_id"] for r in rows}) == 6
    import pyarrow.parquet as pq

    table = pq.read_table(out / "results.parquet")
    assert sorted(table.column("point_id").to_pylist()) == sorted(r["point_id"] for r in rows)
    front = list(csv.DictReader(open(out / "pareto.csv")))
    assert 1 <= len(front) <= 6
    bad = CliRunner().invoke(main, ["sweep", str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2 and "no such sweep spec" in bad.output


@pytest.mark.heavy
def test_sigint_subprocess_then_resume(tmp_path):
    """A real `hwsim sweep` killed with SIGINT keeps what it finished; --resume completes it."""
    data = spec(model=str(ROOT / "examples" / "gpt2-medium.onnx"),
                parameters={"channels.value": [4, 8, 16, 32], "asic.vector_flops.value": [64, 128, 256, 512]},
                workload={"prompt_len": [64, 128, 256, 512, 1024]})
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "simulator.cli", "sweep", str(spec_file), "--out", str(out), "--workers", "2"]
    # the child gets SIGINT's default disposition whatever this process inherited: a run started in the background
    # of a non-interactive shell ignores SIGINT, children inherit that, and Python then installs no Ctrl-C handler
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        if (out / "sweep.sqlite").exists():
            with Store(out / "sweep.sqlite") as st:
                if st.count() >= 5:
                    break
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    with Store(out / "sweep.sqlite") as st:
        done = st.count()
    assert 5 <= done < 80
    res = subprocess.run([*cmd, "--resume", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"({80 - done} simulated, {done} from the store)" in res.stdout
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 80 == len({r["point_id"] for r in rows})


def serving_spec(**over) -> dict:
    data = {"name": "s", "model": MODEL, "target": "a100-80gb",
            "serving": {"targets": ["a100-80gb", "pim-gpt"], "rate": [5, 500], "scheduler": ["vllm"],
                        "requests": 12, "prompt_len": "32", "gen_len": "4", "slo": "ttft=1,tpot=1", "shape_grid": 2},
            "objectives": {"latency_s": "min", "tokens_per_j": "max"}}
    data.update(over)
    return data


def test_serving_sweep_rates_x_targets_x_schedulers(tmp_path):
    """A serving spec spans rates x targets x schedulers; each point is `hwsim serve` (the same numbers as serving
    it directly, every request finished)."""
    from simulator.serving.arrivals import parse_arrivals
    from simulator.serving.distributions import parse_length
    from simulator.serving.metrics import Slo, summarise
    from simulator.serving.setup import prepare, run_serving

    sw = sweep_from_dict(serving_spec())
    assert sweep_from_dict(serving_spec(serving={**serving_spec()["serving"], "scheduler": ["vllm", "static"]})).size == 8
    assert sw.size == 4
    serial = run_sweep(sw, tmp_path / "serial", SerialExecutor(), progress=False)
    assert len(serial.rows) == 4 and not any(r["error"] for r in serial.rows)
    assert {(r["target"], r["rate"], r["scheduler"]) for r in serial.rows} == set(
        itertools.product(["a100-80gb", "pim-gpt"], [5.0, 500.0], ["vllm"]))
    assert all(r["finished"] == 12 and r["tokens_per_s"] > 0 for r in serial.rows)
    # one point against hwsim serve itself
    row = next(r for r in serial.rows if (r["target"], r["rate"], r["scheduler"]) == ("pim-gpt", 5.0, "vllm"))
    from hardware.targets import load_target
    from mapping.op_costs import Precision
    from mapping.workloads import Model

    setup = prepare(Model(MODEL), load_target("pim-gpt"), {}, Precision(), 2)
    m = summarise(run_serving(setup, parse_arrivals("poisson:5"), 12, parse_length("32", "p"),
                              parse_length("4", "g"), "vllm", 256, 2048, 0), Slo(1, 1), 5)
    assert row["latency_s"] == pytest.approx(m["e2e_s"]["p99"], rel=1e-12)


@pytest.mark.heavy
def test_serving_sweep_on_dask_matches_serial(tmp_path):
    from distributed import Client, LocalCluster

    from simulator.sweep.runner import DaskExecutor

    serial = run_sweep(sweep_from_dict(serving_spec()), tmp_path / "serial", SerialExecutor(), progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ex = DaskExecutor(client)
        out = run_sweep(sweep_from_dict(serving_spec()), tmp_path / "dask", ex, progress=False)
        ex.close()
    by_id = {r["point_id"]: r for r in serial.rows}
    for r in out.rows:
        assert r["tokens_per_s"] == pytest.approx(by_id[r["point_id"]]["tokens_per_s"], rel=1e-12)


def test_serving_spec_errors_name_the_field():
    for over, field in (({"serving": {"rate": [0]}}, "serving.rate"),
                        ({"serving": {"rate": [1], "targets": ["nope"]}}, "serving.targets.0"),
                        ({"serving": {"rate": [1], "prompt_len": "gauss:3"}}, "serving.prompt_len"),
                        ({"serving": {"rate": [1], "targets": ["pim-gpt"]}, "parameters": {"channels.value": [4]},
                          "target": "pim-gpt"}, "serving.targets")):
        with pytest.raises(HwsimError, match=f"field '{field}"):
            sweep_from_dict(serving_spec(**over), "s.yaml")


def test_serving_point_where_no_request_finishes_fails_off_the_front(tmp_path):
    """Every request rejected (prompts longer than the KV cache can hold): the point has no latency (not 0 s), an
    error naming why, and is neither feasible nor on the Pareto front."""
    spec = serving_spec(serving={**serving_spec()["serving"], "targets": ["a100-80gb"], "rate": [5],
                                 "prompt_len": "3000", "requests": 4})
    out = run_sweep(sweep_from_dict(spec), tmp_path / "rej", SerialExecutor(), progress=False)
    (row,) = out.rows
    assert row["latency_s"] is None and row["energy_j"] is None and row["finished"] == 0 and row["rejected"] == 4
    assert row["error"].startswith("no request finished (4 of 4 rejected")
    from simulator.sweep.pareto import feasible

    sw = sweep_from_dict(spec)
    assert not feasible(row, sw.spec.objectives, sw.spec.constraints)
    assert not pareto_front(out.rows, sw.spec.objectives)
