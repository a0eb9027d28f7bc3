"""Shared fixtures: paths of the committed models and their manifests."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest


def _leave_hypothesis_unrewritten() -> None:
    """Keep pytest from rewriting the asserts of Hypothesis's own modules.

    pytest marks every module of a distribution that provides a pytest plugin for assertion rewriting, and Hypothesis
    provides one: in a fresh clone (no cached rewritten bytecode) each xdist worker rewrote Hypothesis's ~80 modules,
    about 2 s of its collection. Hypothesis's internal asserts need no pytest explanations; the tests' asserts are
    still rewritten. Hypothesis is not imported yet when pytest loads this file (its plugin imports it lazily); if it
    were, this does nothing."""
    if "hypothesis" in sys.modules:
        return
    for hook in sys.meta_path:
        must = getattr(hook, "_must_rewrite", None)
        if type(hook).__name__ == "AssertionRewritingHook" and isinstance(must, set):
            must.discard("hypothesis")
            cache = getattr(hook, "_marked_for_rewrite_cache", None)
            if isinstance(cache, dict):
                cache.clear()


_leave_hypothesis_unrewritten()
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
EXAMPLES = ROOT / "examples"


def manifest(folder: Path) -> dict[str, dict]:
    """File name -> manifest entry."""
    data = json.loads((folder / "manifest.json").read_text())
    return {e["file"]: e for e in data["models"]}


FIXTURE_MODELS = manifest(FIXTURES)
EXAMPLE_MODELS = manifest(EXAMPLES)

#: Larger sizes of families the default run already checks at a smaller size (run with ``-m heavy``).
LARGER_SIZES = {"gpt2-medium.onnx", "gpt2-large.onnx", "gpt2-xl.onnx", "gpt3-medium.onnx", "gpt3-large.onnx",
                "gpt3-xl.onnx", "opt-350m.onnx", "opt-1.3b.onnx", "llama2-13b.onnx", "mistral-7b.onnx", "yi-34b.onnx",
                "llama2-70b.onnx", "llama3.1-70b.onnx"}


def example_params() -> list:
    """Every shipped example; the larger sizes of a family are marked heavy."""
    return [pytest.param(n, marks=pytest.mark.heavy) if n in LARGER_SIZES else n for n in sorted(EXAMPLE_MODELS)]


_SHARED_MODELS: dict[tuple, object] = {}


def scaled_preset_value(value: float, factor: float, whole: bool = True) -> float:
    """A preset number times ``factor`` for invariant sweeps: a whole number (a count) stays a whole number >= 1
    unless ``whole`` is False (a clock in MHz or GHz is not a count)."""
    return max(1, round(value * factor)) if whole and float(value).is_integer() else value * factor


def assert_matches_heldout_truth(model, facts: dict, truth: dict) -> None:  # noqa: ANN001 - a mapping.workloads.Model
    """A held-out file's IR against its config facts (architecture, layers, heads, KV heads, head size, width, every
    one required) and its passes' matmul FLOPs against the onnxruntime-counted truth within 1%: the prefill of
    ``truth['S']`` tokens where the truth has one, the decode step after ``truth['C']`` cached tokens where it has a
    non-zero one (tests/test_heldout5.py, 7, 8)."""
    from hardware.errors import HwsimWarning

    ir = model.ir
    assert ir.architecture == facts["architecture"]
    assert sum(ir.layers.values()) == facts["layers"]
    for key in ("heads", "kv_heads", "head_dim", "d_model"):
        assert getattr(ir, key) == facts[key], key
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)  # the image models' "no sequence dim" note
        if "prefill_matmul_flops" in truth:
            got = model.prefill(1, truth["S"]).matmul_flops
            assert abs(got / truth["prefill_matmul_flops"] - 1) <= 0.01, (got, truth["prefill_matmul_flops"])
        if truth.get("decode_matmul_flops"):
            got = model.decode(1, truth["C"]).matmul_flops
            assert abs(got / truth["decode_matmul_flops"] - 1) <= 0.01, (got, truth["decode_matmul_flops"])


def shared_model(path: Path | str, dims: dict[str, int] | None = None):
    """One Model per (file, dims) for the whole test session of a worker, for tests that only read it (its IR, the
    FLOPs and bytes of its passes): importing and recognising a graph is most of such a test's time, and the FLOP and
    recognition tests import the same files. Tests that check what loading does (warnings, errors) build their own."""
    from mapping.workloads import Model

    key = (str(path), tuple(sorted((dims or {}).items())))
    if key not in _SHARED_MODELS:
        _SHARED_MODELS[key] = Model(str(path), dims)
    return _SHARED_MODELS[key]


@pytest.fixture(scope="session")
def gpt2():
    """The GPT-2 fixture graph (tests/fixtures/models/gpt2_ts.onnx) as :func:`shared_model` holds it, with its load
    warnings silenced (the parallel and serving tests share it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return shared_model(FIXTURES / "gpt2_ts.onnx")


@pytest.fixture(scope="session")
def fixture_path():
    return lambda name: str(FIXTURES / name)


#: Tests that a cheaper sibling covers in the default run; they run under ``-m heavy`` (the default run must stay
#: under 60 s on 2 cores). Each line: the test, and what still checks the same behaviour by default.
HEAVY_SIBLINGS = {
    "test_heldout3.py::test_pim_mappers_write_an_mla_cache_with_its_values_head_size",  # the AiM programs' test stays
    "test_dram_timing.py::test_matches_reference_implementation",  # golden table; Ramulator cross-checks stay
    "test_field_use.py::test_a_field_changes_results_exactly_when_declared_read[fpga]",  # gpu and pim stay
    "test_validation_reports.py::test_jet_tagger_report_on_one_configuration",  # fpga_jet_tagger build in heavy
    "test_gpu_validation.py::test_roofline_png_and_points",  # roofline points: test_gpu_model kernel tests
    "test_review_fixes.py::test_tensor_parallel_memory_counts_every_gpu",  # test_parallel per-device checks
    "test_fpga_model.py::test_hls_command_ties_part_and_target",  # test_hls_command_writes_project
    "test_sweep.py::test_dask_local_cluster_matches_serial",  # pool executor test stays
    "test_dram_validation.py::test_closed_rows_ddr4_random_agree_to_the_cycle",  # other Ramulator traces stay
    "test_fpga_model.py::test_hls_synth_with_tool_on_path[Vitis-vitis-run]",  # the Vivado case stays
    "test_fpga_model.py::test_hls_synth_with_tool_on_path[Vitis-vitis_hls]",
    "test_fpga_model.py::test_hls_target_sets_part",  # test_hls_command_writes_project
    "test_fpga_model.py::test_parse_synth_report_missing",
    "test_fpga_model.py::test_hls_synth_without_tool_prints_the_command",
    "test_dram_validation.py::test_per_bank_refresh_lpddr5_row_conflict_agrees_to_the_cycle",  # hbm2 per-bank stays
    "test_dram_validation.py::test_agrees_with_ramulator_to_the_cycle[gddr6-random]",
    "test_review_fixes.py::test_refresh_flag_accepts_yes_and_no",
    # the default run's time budget (60 s on 2 cores in a fresh clone), sixth session:
    "test_sweep_robust.py::test_resumed_nsga2_equals_a_clean_run",  # test_sweep's grid resume tests stay
    "test_sweep_robust.py::test_two_specs_in_one_folder_keep_their_own_outputs",  # test_cli_sweep_writes_outputs
    "test_architecture.py::test_fpga_streaming_tiles_converge_to_the_closed_form",  # test_mapper_streams_weights
    "test_fpga_model.py::test_token_choice_reaches_the_project",  # test_hls_command_writes_project
    "test_pim.py::test_cli_simulate_generate_and_outputs",  # test_single_matmul_graph_on_pim (--json on pim-gpt)
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ARG001 - pytest's hook signature
    """Mark :data:`HEAVY_SIBLINGS` heavy before ``-m 'not heavy'`` deselects."""
    for item in items:
        if item.nodeid.removeprefix("tests/") in HEAVY_SIBLINGS:
            item.add_marker(pytest.mark.heavy)
