"""Bad and nonsensical GPU options and CLI values: each is refused with one line naming the flag and the fix
(regressions of the bad-input pass over the GPU target's options; all in-process, no simulation runs)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from hardware.errors import HwsimError
from hardware.targets import load_target
from mapping.gpu.options import GpuOptions
from mapping.gpu.plugin import PLUGIN
from mapping.op_costs import Precision
from simulator.cli import main, writing

GPT2 = "tests/fixtures/models/gpt2_ts.onnx"


def _model(heads: int, kv_heads: int, architecture: str = "decoder-only") -> SimpleNamespace:
    """What GpuPlugin.check reads of a model: its IR's head counts and architecture, and its path."""
    return SimpleNamespace(path="m.onnx", ir=SimpleNamespace(heads=heads, kv_heads=kv_heads, architecture=architecture))


def _check(model: SimpleNamespace, target: str = "a100-80gb", **options: object) -> None:
    PLUGIN.check(model, load_target(target), GpuOptions.parse(options), Precision())


def _cli(*args: str):  # noqa: ANN202 - click's Result
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("key", ["tp", "kv_heads", "comm_chunks", "quant_group", "host_op_us"])
def test_true_false_is_not_a_number(key):
    # `--set kv_heads=true` used to run as one KV head (MQA), quant_group=false as per-channel scales
    with pytest.raises(HwsimError, match=r"=true: expected a number, not true/false|true: expected a number"):
        GpuOptions.parse({key: True, "stack": "eager"})
    assert GpuOptions.parse({"tf32": True}).tf32 is True  # a real flag still takes it


def test_host_time_overrides_are_refused_with_the_options():
    # checked where the options are validated (so a sweep spec is refused at load), not first in the mapper
    with pytest.raises(HwsimError, match="host_op_us applies to --set stack=eager"):
        GpuOptions.parse({"stack": "graph", "host_op_us": 10})
    with pytest.raises(HwsimError, match="host_step_us needs a software stack"):
        GpuOptions.parse({"host_step_us": 10})
    assert GpuOptions.parse({"stack": "engine", "host_step_us": 5}).host_step_us == 5


def test_tf32_needs_tf32_tensor_cores():
    # a V100 (no TF32) used to run fp32 GEMMs at its fp16 tensor rate; a T4 failed with a misleading tile-fit error
    fp32 = Precision("float32", "float32", "float32")
    for name in ("v100", "t4"):
        with pytest.raises(HwsimError, match=f"tf32=true: {name} has no tf32 tensor cores"):
            PLUGIN.check(_model(12, 12), load_target(name), GpuOptions.parse({"tf32": True}), fp32)
    PLUGIN.check(_model(12, 12), load_target("a100-80gb"), GpuOptions.parse({"tf32": True}), fp32)
    # on a run without fp32 GEMMs it would change nothing: refused, naming the precision to use
    with pytest.raises(HwsimError, match=r"tf32=true applies to fp32 GEMMs \(--precision fp32\)"):
        PLUGIN.check(_model(12, 12), load_target("a100-80gb"), GpuOptions.parse({"tf32": True}),
                     Precision("float16", "float16", "float16"))


@pytest.mark.parametrize("options, precision, needs", [
    ({"tp": 1, "allreduce": "nccl"}, None, "applies with tensor parallelism"),
    ({"tp_lm_head": "replicated"}, None, "applies with tensor parallelism"),
    ({"comm_chunks": 2}, None, "applies with tensor parallelism"),
    ({"quant_kernel": "dequant"}, ("float16", "float16"), "applies to low-bit weights"),
    ({"quant_group": 64}, ("float16", "float16"), "applies to low-bit weights"),
    ({"act_quant": "fused"}, ("int8", "float16"), "applies to W8A8 activations")])
def test_options_that_would_change_nothing_are_refused(options, precision, needs):
    """An option set where it cannot apply was accepted and changed nothing; each is refused, naming what it needs.
    Where it applies it runs."""
    with pytest.raises((HwsimError, ValueError), match=needs):
        opts = GpuOptions.parse(options)
        PLUGIN.check(_model(12, 12), load_target("a100-80gb"), opts, Precision(*precision, "float16"))
    ok = {"quant_kernel": ("int4", "float16"), "quant_group": ("int4", "float16"), "act_quant": ("int8", "int8")}
    key = next(iter(k for k in options if k != "tp"))
    if key in ok:
        PLUGIN.check(_model(12, 12), load_target("a100-80gb"), GpuOptions.parse(options),
                     Precision(*ok[key], "float16"))
    else:
        GpuOptions.parse({**options, "tp": 2})


@pytest.mark.parametrize("kv_heads, ok", [(1, True), (4, True), (12, True), (5, False), (24, False)])
def test_kv_heads_override_must_divide_the_heads(kv_heads, ok):
    # a non-divisor (or more KV heads than heads) was silently run as MHA by the mapper
    if ok:
        _check(_model(12, 12), kv_heads=kv_heads)
    else:
        with pytest.raises(HwsimError, match=f"kv_heads={kv_heads}: must divide the 12 attention heads of m.onnx"):
            _check(_model(12, 12), kv_heads=kv_heads)


@pytest.mark.parametrize("heads, kv, tp, ok", [(12, 3, 4, False), (12, 6, 4, False), (56, 8, 7, False),
                                                (32, 8, 16, True), (32, 8, 4, True), (12, 12, 4, True)])
def test_tp_must_split_or_replicate_the_kv_heads(heads, kv, tp, ok):
    # `--parallel tp=` refused uneven KV splits, `--tp` did not (and 3 KV heads over 4 GPUs were costed as 1 each)
    if ok:
        _check(_model(heads, kv), tp=tp)
    else:
        with pytest.raises(HwsimError, match=f"--tp/--parallel tp={tp}: the model's {kv} KV heads"):
            _check(_model(heads, kv), tp=tp)


@pytest.mark.parametrize("key, value", [("attention", "lean"), ("kv_update", "concat")])
def test_decode_options_are_refused_on_an_encoder(key, value):
    with pytest.raises(HwsimError, match=f"{key}={value}: chooses how decode steps run; m.onnx is encoder-only"):
        _check(_model(12, 12, "encoder-only"), **{key: value})
    _check(_model(12, 12, "decoder-only"), **{key: value})


def test_cli_refuses_contradicting_flag_and_set():
    res = _cli("simulate", GPT2, "--target", "a100-80gb", "--tp", "2", "--set", "tp=4")
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: --tp 2 and --set tp=4: give tp once"


def test_cli_plot_format_is_checked_first(tmp_path):
    res = _cli("simulate", GPT2, "--target", "a100-80gb", "--plot", str(tmp_path / "out.json"))
    assert res.exit_code == 2 and len(res.stderr.splitlines()) == 1
    assert "--plot" in res.stderr and "matplotlib writes no '.json' files" in res.stderr


def test_a_failed_write_is_one_line():
    with pytest.raises(HwsimError, match=r"--json x.json: cannot write it \(Permission denied\)"):
        with writing("--json", "x.json"):
            raise PermissionError(13, "Permission denied")


@pytest.mark.parametrize("flags, message", [
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--slo", "ttft=inf,tpot=1"], "limits must be finite and > 0"),
    (["--sweep-rate", "1,inf"], "rates must be finite and > 0"),
])
def test_serve_refuses_negative_seed_and_infinite_limits(flags, message):
    # a negative seed was an internal error (numpy), an infinite SLO or rate reached the JSON as inf
    res = _cli("serve", GPT2, "--target", "a100-80gb", "--arrivals", "poisson:1", "--requests", "2", *flags)
    assert res.exit_code == 2 and len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith("error: ") and message in res.stderr


def test_sweep_options_are_checked_at_load(tmp_path):
    from simulator.sweep.spec import sweep_from_dict

    spec = {"model": GPT2, "target": "a100-80gb", "options": {"stack": "graph", "host_op_us": 10}}
    with pytest.raises(HwsimError, match="spec: field 'options': --set host_op_us applies to --set stack=eager"):
        sweep_from_dict(spec, "spec")
    with pytest.raises(HwsimError, match="field 'options': --set bogus: not an option of gpu targets"):
        sweep_from_dict({**spec, "options": {"bogus": 1}}, "spec")


def test_compare_where_no_target_runs_exits_2():
    res = _cli("compare", "tests/fixtures/models/bert_ts.onnx", "--targets", "a100-80gb,h100-sxm", "--phase", "decode")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: no target ran bert_ts.onnx; the first: ") and len(res.stderr.splitlines()) == 1
    assert res.stdout.count("encoder-only") == 2  # the table still shows each target's reason


def test_head_weights_error_names_its_own_flag():
    res = _cli("simulate", GPT2, "--target", "a100-80gb", "--head-weights", "bogus")
    assert res.exit_code == 2 and res.stderr.startswith("error: --head-weights: unknown precision 'bogus'")


@pytest.mark.heavy  # a full sweep run with its store and outputs (~2 s)
def test_sweep_whose_every_point_fails_prints_one_error_line(tmp_path):
    # the per-point note used to come first, so stderr had two lines saying the same thing
    spec = tmp_path / "s.yaml"
    spec.write_text(f"model: {Path(GPT2).resolve()}\ntarget: a100-80gb\noptions: {{tp: 3}}\nworkload: {{prompt_len: [8]}}\n")
    res = _cli("sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet")
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [f"error: every point of {spec} failed; the first: --tp 3: the model's 4 attention "
                                       "heads do not split evenly over 3 GPUs"]


def test_kv_heads_override_sizes_the_cache_the_memory_check_and_serving_use():
    # --set kv_heads=4 on GPT-2 (12 heads of 64, 12 layers): the cache holds 4 heads, so every KV byte count is a
    # third: 2 (K, V) x 12 layers x 4 heads x 64 x 2 B = 12,288 B per token (hand-derived), not 36,864
    from mapping.workloads import Model
    from simulator.serving.setup import prepare
    from simulator.simulate import simulate

    gpt2 = Model(str(Path(__file__).resolve().parent.parent / "examples" / "gpt2.onnx"))
    fp16 = Precision(kv_cache="float16")
    assert gpt2.with_kv_heads(4).kv_cache_bytes(1, 1, fp16) == 12_288 and gpt2.kv_cache_bytes(1, 1, fp16) == 36_864
    assert gpt2.with_kv_heads(None) is gpt2 and gpt2.kv_heads_override is None
    a100 = load_target("a100-80gb")
    plain = simulate(gpt2, a100, "decode", 4, 512, 1, Precision(), {})
    gqa = simulate(gpt2, a100, "decode", 4, 512, 1, Precision(), {"kv_heads": 4})
    assert plain.memory_bytes - gqa.memory_bytes == 2 * 36_864 // 3 * 4 * 513
    setup = prepare(gpt2, a100, {"kv_heads": 4}, Precision(), per_octave=2)
    assert setup.kv_bytes_per_token == 12_288
