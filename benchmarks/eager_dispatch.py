"""Count the ATen ops a PyTorch eager framework dispatches per decode step: the host work of ``--set stack=eager``.

    python benchmarks/eager_dispatch.py --case bnb-optimum-bench/llama3.1-8b [--write]
    python benchmarks/eager_dispatch.py --arch llama --layers 32 --heads 32 --kv-heads 8 --attn sdpa --dtype bf16
    python benchmarks/eager_dispatch.py --config path/to/config.json        # your model's Hugging Face config
    python benchmarks/eager_dispatch.py --case gpt-fast-blog/llama2-7b --checkout DIR   # a gpt-fast checkout's model.py

PyTorch eager pays its host time (Python, the dispatcher, the launch) per ATen op it dispatches, views included. An
ONNX graph's op count is only a proxy for that number: the graph was exported by another framework version, with
attention decomposed or not, views folded or not. This script counts the real number on the CPU, for a framework at
the version it is run with: a model of the case's structure (its layer count, heads, KV heads, biases) is built from
a config with random weights at a small width (the count does not depend on the width), a prompt is run, and the
ops are counted under a ``TorchDispatchMode`` over two generations of different lengths; their difference per step is
one decode step's count, the generation loop's own ops (logits processors, stopping checks, the next token's bookkeeping)
included. Three counts per step: every ATen op dispatched (``aten``, the unit ``--set host_dispatches=`` takes), those
that are not views or metadata (``kernels``: ops that launch work), and the Python-level torch calls
(``torch_functions``, under a ``TorchFunctionMode``).

Needs torch and, for the transformers cases, transformers at the version the case names (the script refuses another
version; ``--any-version`` counts with what is installed). A CUDA build is not needed: the ops dispatched are the
same on the CPU except inside fused kernels (scaled_dot_product_attention is one op on either device). The torch
version is the one installed (the recorded counts: 2.13, CPU), not necessarily the source's: a torch release may
decompose an op (F.linear to t + mm, SDPA's math path) into a few more or fewer ATen ops per layer. ``--write`` merges
the count into hardware/calibration/host/eager_dispatch.json under the case's name, with the command and versions.

What it counts is a decode step; hwsim charges the same count to every forward pass of a run given
``--set host_dispatches`` (a prefill dispatches about the same ops) and to every tensor-parallel rank (each rank's
process dispatches the whole pass; a pipeline stage takes its share).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Any


class CountError(Exception):
    """Bad input to the counter: printed as one ``error:`` line, exit status 2."""


def _first_line(exc: Exception, limit: int = 160) -> str:
    """An exception's message cut to its first line and ``limit`` characters (transformers lists every model type)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


OUT = Path(__file__).resolve().parents[1] / "hardware" / "calibration" / "host" / "eager_dispatch.json"

#: ATen ops that return a view or only read metadata (no kernel is launched for them)
VIEWS = frozenset({
    "aten.view", "aten._unsafe_view", "aten.t", "aten.unsqueeze", "aten.squeeze", "aten.slice", "aten.select",
    "aten.transpose", "aten.permute", "aten.expand", "aten.alias", "aten.detach", "aten._reshape_alias",
    "aten.as_strided", "aten.unbind", "aten.split", "aten.split_with_sizes", "aten.view_as_real",
    "aten.view_as_complex", "aten.unflatten", "aten.flatten", "aten.lift_fresh", "aten.sym_size", "aten.sym_stride",
    "aten.sym_numel", "aten.sym_storage_offset"})

#: the published eager sources' setups (hardware/calibration/published.yaml, sources of the same names): framework,
#: version, model structure and generation settings; the width is small because the count does not depend on it
CASES: dict[str, dict[str, Any]] = {
    "bnb-optimum-bench/llama3.1-8b": dict(
        framework="transformers", version="4.46.3", arch="llama", layers=32, heads=32, kv_heads=8, attn="sdpa",
        dtype="bf16", prompt=64, rope_llama3=True,
        setup="optimum-benchmark's text generation: generate(min_new_tokens = max_new_tokens), greedy, DynamicCache"),
    "bnb-optimum-bench/qwen2.5-32b": dict(
        framework="transformers", version="4.46.3", arch="qwen2", layers=64, heads=40, kv_heads=8, attn="sdpa",
        dtype="bf16", prompt=64,
        setup="optimum-benchmark's text generation: generate(min_new_tokens = max_new_tokens), greedy, DynamicCache"),
    "hf-optimum-gptq/llama2-13b": dict(
        framework="transformers", version="4.35.2", arch="llama", layers=40, heads=40, kv_heads=40, attn="default",
        dtype="fp16", prompt=512,
        setup="optimum's GPTQ benchmark (fp16 row): generate(min_new_tokens = max_new_tokens), greedy, legacy "
              "tuple cache, attention as the version's default (eager; SDPA arrived in 4.36)"),
    **{f"pim-gpt-baseline/gpt2-{n}-layers": dict(
        framework="transformers", version="4.35.2", arch="gpt2", layers=n, heads=16, kv_heads=16, attn="default",
        dtype="fp16", prompt=32,
        setup="reports/pim_gpt.md's assumed T4 baseline: Hugging Face GPT2LMHeadModel (GPT-2 and GPT-3 shapes) in "
              "generate(min_new_tokens = max_new_tokens), greedy, at a late-2023 version (4.35.2; the paper's is "
              "not known)") for n in (12, 24, 36, 48)},
    "fms-pr34/llama-7b": dict(
        framework="fms", version="f991a935", arch="llama", layers=32, heads=32, kv_heads=32, attn="sdpa",
        dtype="fp16", prompt=50,
        setup="IBM foundation-model-stack scripts/benchmark_inference.py @ f991a935 (PR #34), end_to_end: fms.utils."
              "generation.generate(model, ids, max_new_tokens=25, do_sample=False, use_cache=True), fp16 default dtype"),
    "litgpt-pr726/open-llama-7b": dict(
        framework="litgpt", version="64371ab8", arch="llama", layers=32, heads=32, kv_heads=32, attn="sdpa",
        dtype="bf16", prompt=7, name="open_llama_7b",
        setup="Lightning-AI/litgpt generate/base.py @ 64371ab8 (PR #726) without --compile: generate()'s loop of "
              "next_token (top-k 200, temperature 0.8, torch.multinomial) and the eos check, its static KV cache"),
    "gpt-fast-blog/llama2-7b": dict(
        framework="gpt-fast", version="d2c5d82", arch="llama", layers=32, heads=32, kv_heads=32, attn="sdpa-math",
        dtype="bf16", prompt=5,
        setup="gpt-fast generate.py @ d2c5d82 without --compile: decode_n_tokens' loop, SDPA with only the math "
              "backend enabled, sampling with temperature 0.8 and top-k 200 (the script's defaults), static KV cache"),
}


def _torch_dtype(name: str):  # noqa: ANN202 - a torch dtype, imported lazily
    """The torch dtype of a case's ``dtype`` (bf16, fp16, fp32)."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def _counting_modes():  # noqa: ANN202 - torch types, imported lazily
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class Dispatches(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: Counter[str] = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            self.ops[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    class Functions(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            self.calls += 1
            return func(*args, **(kwargs or {}))

    return Dispatches, Functions


def _transformers_generation(case: dict[str, Any]):  # noqa: ANN202
    """A function running ``n`` decode steps of the case's transformers model (after its prompt)."""
    import torch
    import transformers

    where = f"--config {case['config']}" if case.get("config") else "the model"
    if case.get("config"):
        try:
            raw = json.loads(Path(case["config"]).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CountError(f"{where}: not a readable JSON file ({_first_line(exc)}); give a Hugging Face config.json") from None
        if not isinstance(raw, dict) or "model_type" not in raw:
            raise CountError(f"{where}: no model_type field (a Hugging Face config.json has one)")
        try:
            config = _narrowed(transformers.AutoConfig.for_model(raw.pop("model_type"), **raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise CountError(f"{where}: transformers {transformers.__version__} cannot build this config ({_first_line(exc)})") \
                from None
    else:
        config = _config(transformers, case)
    kwargs = {} if case["attn"] == "default" else {"attn_implementation": case["attn"]}
    dtype = _torch_dtype(case["dtype"])
    torch.manual_seed(0)
    try:
        model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=dtype, **kwargs).eval()
    except (ValueError, KeyError, TypeError, ImportError) as exc:
        raise CountError(f"{where}: not a causal language model transformers can build ({_first_line(exc)})") from None
    vocab = int(getattr(config, "vocab_size", 512) or 512)
    ids = torch.randint(1, min(vocab, 512), (1, case["prompt"]))
    mask = torch.ones_like(ids)
    with torch.no_grad():  # a decode step needs a KV cache: an encoder (BERT) returns none
        probe = model(input_ids=ids[:, :2], attention_mask=mask[:, :2], use_cache=True)
    if getattr(probe, "past_key_values", None) is None:
        raise CountError(f"{where}: {type(model).__name__} returns no KV cache, so it has no decode step (an encoder "
                         "such as BERT); count a decoder (a causal LM)")

    def generate(n: int) -> None:
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           pad_token_id=0)
    return generate


#: config fields set small for a ``--config`` model (the count depends on the structure, not the width): the width,
#: the MLP's and the experts' widths, the vocabulary
NARROW = {"hidden_size": None, "intermediate_size": 2, "moe_intermediate_size": 2, "shared_expert_intermediate_size": 2,
          "ffn_dim": 2, "n_inner": 2, "vocab_size": 512}


def _narrowed(config: Any) -> Any:
    """A Hugging Face config (``--config config.json``) with its widths made small and its structure kept: layers,
    heads, KV heads, experts, rotary and attention settings; head dim 16. Fields it does not have are left alone."""
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    if not heads:
        raise CountError("--config: no num_attention_heads (or n_head) in the config; give --arch/--layers/--heads")
    width = 16 * int(heads)
    changed = []
    for key, factor in NARROW.items():
        if getattr(config, key, None):
            value = width if factor is None else (factor * width if key != "vocab_size" else factor)
            setattr(config, key, value)
            changed.append(f"{key}={value}")
    if getattr(config, "head_dim", None):
        config.head_dim = 16
        changed.append("head_dim=16")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
        ids = getattr(config, key, None)  # special tokens must lie inside the narrowed vocabulary
        if ids is not None and max(ids if isinstance(ids, list) else [ids]) >= NARROW["vocab_size"]:
            setattr(config, key, 1)
            changed.append(f"{key}=1")
    print(f"--config: {', '.join(changed)} (structure kept)", file=sys.stderr)
    return config


def _config(transformers: Any, case: dict[str, Any]) -> Any:
    """The config of a named case or of --arch/--layers/--heads (head dim 16)."""
    width = 16 * case["heads"]  # head dim 16: the count does not depend on the width
    common = dict(hidden_size=width, intermediate_size=2 * width, num_attention_heads=case["heads"],
                  num_key_value_heads=case["kv_heads"], num_hidden_layers=case["layers"], vocab_size=512,
                  max_position_embeddings=131072)
    if case["arch"] == "qwen2":
        return transformers.Qwen2Config(**common)
    if case["arch"] == "gpt2":
        return transformers.GPT2Config(n_embd=width, n_head=case["heads"], n_layer=case["layers"], vocab_size=512,
                                       n_positions=2048, bos_token_id=1, eos_token_id=1)
    if case["arch"] != "llama":
        raise CountError(f"--arch {case['arch']}: one of llama, qwen2, gpt2 (or --config config.json)")
    if case.get("rope_llama3"):
        common.update(rope_theta=500000.0, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192})
    return transformers.LlamaConfig(**common)


def _gpt_fast_generation(case: dict[str, Any], checkout: Path):  # noqa: ANN202
    """``n`` steps of gpt-fast's eager decode loop (generate.py's decode_n_tokens and sample) on its model.py."""
    import torch

    sys.path.insert(0, str(checkout))
    from model import ModelArgs, Transformer  # gpt-fast's model.py, read from the user's checkout

    args = ModelArgs(n_layer=case["layers"], n_head=case["heads"], n_local_heads=case["kv_heads"],
                     dim=16 * case["heads"], vocab_size=512, block_size=1024)
    model = Transformer(args).to(torch.bfloat16).eval()
    model.setup_caches(1, 512)

    def sample(logits, temperature: float = 0.8, top_k: int = 200):  # noqa: ANN001, ANN202 - generate.py's
        logits = logits[0, -1] / max(temperature, 1e-5)
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = torch.where(logits < v.select(-1, -1).unsqueeze(-1), -float("Inf"), logits)
        probs = torch.nn.functional.softmax(logits, dim=-1)
        q = torch.empty_like(probs).exponential_(1)
        return torch.argmax(probs / q, dim=-1, keepdim=True).to(dtype=torch.int), probs

    def generate(n: int) -> None:
        token, pos = torch.tensor([[1]]), torch.tensor([case["prompt"]])
        with torch.no_grad():
            for _ in range(n):
                with torch.backends.cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False, enable_math=True):
                    nxt, prob = sample(model(token, pos))
                pos += 1
                nxt.clone(), prob.clone()
                token = nxt.view(1, -1)
    return generate


def _fms_generation(case: dict[str, Any], checkout: Path):  # noqa: ANN202
    """``n`` steps of IBM foundation-model-stack's own generate() on its LLaMA (a checkout's fms package)."""
    import torch

    sys.path.insert(0, str(checkout))
    from fms.models.llama import LLaMA, LLaMAConfig  # the user's checkout
    from fms.utils import generation

    dtype = _torch_dtype(case["dtype"])
    torch.set_default_dtype(dtype)  # as the benchmark script does
    model = LLaMA(LLaMAConfig(src_vocab_size=512, emb_dim=16 * case["heads"], nheads=case["heads"],
                              kvheads=0 if case["kv_heads"] == case["heads"] else case["kv_heads"],
                              nlayers=case["layers"])).eval()
    torch.set_default_dtype(torch.float32)
    ids = torch.randint(1, 512, (1, case["prompt"]))

    def generate(n: int) -> None:
        with torch.no_grad():
            generation.generate(model, ids, max_new_tokens=n, do_sample=False, use_cache=True)
    return generate


def _litgpt_generation(case: dict[str, Any], checkout: Path):  # noqa: ANN202
    """``n`` steps of litgpt's generate/base.py loop (next_token, sample, the eos check) on its GPT (a checkout)."""
    import torch

    sys.path.insert(0, str(checkout))
    from lit_gpt.config import Config  # the user's checkout (needs lightning >= 2.2 importable)
    from lit_gpt.model import GPT

    dtype = _torch_dtype(case["dtype"])
    config = Config.from_name(case["name"], n_embd=16 * case["heads"], intermediate_size=32 * case["heads"],
                              vocab_size=512, padded_vocab_size=512, n_layer=case["layers"])
    model = GPT(config).to(dtype).eval()
    model.max_seq_length = 600
    model.set_kv_cache(batch_size=1)

    def sample(logits, temperature: float = 0.8, top_k: int = 200):  # noqa: ANN001, ANN202 - generate/base.py's
        logits = logits[0, -1]
        v, i = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = torch.full_like(logits, float("-inf")).scatter_(-1, i, v)
        probs = torch.nn.functional.softmax(logits / temperature, dim=-1)
        return torch.multinomial(probs, num_samples=1)

    def generate(n: int) -> None:
        token, pos = torch.tensor([1]), torch.tensor([case["prompt"]])
        with torch.inference_mode():
            for _ in range(n):
                token = sample(model(token.view(1, -1), pos)).type_as(token).clone()
                if token == 2:  # eos_id
                    pass
                pos = pos.add_(1)
    return generate


def count(case: dict[str, Any], checkout: Path | None = None, short: int = 4, long: int = 12) -> dict[str, Any]:
    """The per-step dispatch counts of ``case``: the difference of a ``long`` and a ``short`` generation per step."""
    dispatches, functions = _counting_modes()
    run = {"gpt-fast": _gpt_fast_generation, "fms": _fms_generation, "litgpt": _litgpt_generation}.get(case["framework"])
    run = run(case, checkout) if run else _transformers_generation(case)
    run(2)  # warm-up: lazily built buffers and caches
    counted = []
    for n in (short, long):
        d, f = dispatches(), functions()
        with f, d:
            run(n)
        counted.append((d.ops, f.calls))
    (ops_a, fn_a), (ops_b, fn_b) = counted
    steps = long - short
    by_op = {k: (ops_b[k] - ops_a[k]) / steps for k in sorted(set(ops_a) | set(ops_b)) if ops_b[k] != ops_a[k]}
    aten = sum(by_op.values())
    return {"aten": aten, "kernels": sum(v for k, v in by_op.items() if k not in VIEWS),
            "torch_functions": (fn_b - fn_a) / steps,
            "by_op": dict(sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0])))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=sorted(CASES), help="a published eager source's setup")
    p.add_argument("--config", type=Path, help="a Hugging Face config.json (any causal LM transformers builds from "
                                                "a config; widths made small, structure kept)")
    p.add_argument("--arch", choices=("llama", "qwen2", "gpt2"), default="llama")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=None, help="default: --heads (MHA)")
    p.add_argument("--attn", default="sdpa", help="transformers attn_implementation (default: sdpa)")
    p.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16")
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--checkout", type=Path, help="the source's own code at the case's commit (gpt-fast, fms cases)")
    p.add_argument("--any-version", action="store_true", help="count with the installed framework version")
    p.add_argument("--write", action="store_true", help=f"merge the count into {OUT.relative_to(OUT.parents[3])}")
    args = list(sys.argv[1:] if argv is None else argv)
    a = p.parse_args(args)
    try:
        return _run(a, args)
    except CountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(a: argparse.Namespace, args: list[str]) -> int:
    """The count of ``a`` (parsed arguments), printed and, with ``--write``, recorded."""
    if a.write and not a.case:
        raise CountError("--write records the published cases only (--case)")
    if a.case and a.config:
        raise CountError(f"--case {a.case} and --config: a case names its own model; give one of them")
    for flag, value in (("--layers", a.layers), ("--heads", a.heads), ("--prompt", a.prompt)):
        if value < 1:
            raise CountError(f"{flag} {value}: must be at least 1")
    if a.kv_heads is not None and (a.kv_heads < 1 or a.heads % a.kv_heads):
        raise CountError(f"--kv-heads {a.kv_heads}: must divide --heads {a.heads}")
    import torch

    if a.case:
        case = dict(CASES[a.case])
    else:
        case = dict(framework="transformers", version=None, arch=a.arch, layers=a.layers, heads=a.heads,
                    kv_heads=a.kv_heads or a.heads, attn=a.attn, dtype=a.dtype, prompt=a.prompt, setup="custom",
                    config=str(a.config) if a.config else None)
        if a.config and not a.config.is_file():
            raise CountError(f"--config {a.config}: no such file (a Hugging Face config.json)")
    if case["framework"] in ("gpt-fast", "fms", "litgpt"):
        marker = {"gpt-fast": "model.py", "fms": "fms/models/llama.py", "litgpt": "lit_gpt/model.py"}[case["framework"]]
        repo = {"gpt-fast": "pytorch-labs/gpt-fast", "fms": "foundation-model-stack/foundation-model-stack",
                "litgpt": "Lightning-AI/litgpt"}
        if a.checkout is None or not (a.checkout / marker).is_file():
            raise CountError(f"{a.case}: needs --checkout DIR, a {repo[case['framework']]} checkout at "
                             f"{case['version']} (git checkout of that commit) holding {marker}")
        installed = case["version"]
    else:
        import transformers

        installed = transformers.__version__
        if case["version"] and installed != case["version"] and not a.any_version:
            raise CountError(f"{a.case}: the source ran transformers {case['version']}, this environment has "
                             f"{installed}; pip install transformers=={case['version']} (or pass --any-version)")
    result = count(case, a.checkout)
    entry = {"setup": case, "framework_version": installed, "torch": torch.__version__,
             "python": platform.python_version(), "per_step": {k: result[k] for k in ("aten", "kernels", "torch_functions")},
             "by_op": result["by_op"],
             "command": "python benchmarks/eager_dispatch.py " + " ".join(
                 f"CHECKOUT_AT_{case['version']}" if prev == "--checkout" else arg
                 for prev, arg in zip([""] + args, args)),
             "environment": f"pip install torch=={torch.__version__.split('+')[0]}" + (
                 f" transformers=={installed}" if case["framework"] == "transformers" else "")}
    print(f"{a.case or 'custom'}: {case['framework']} {installed}, torch {torch.__version__}: per decode step "
          f"{result['aten']:.0f} ATen ops dispatched ({result['kernels']:.0f} not views), "
          f"{result['torch_functions']:.0f} torch function calls")
    if a.write:
        doc = json.loads(OUT.read_text()) if OUT.exists() else {"description": (
            "ATen ops dispatched per decode step by the published eager sources' frameworks, counted on the CPU by "
            "benchmarks/eager_dispatch.py (see its docstring); reports/gpu_validation.md's eager points take "
            "per_step.aten as --set host_dispatches"), "cases": {}}
        doc["cases"][a.case] = entry
        OUT.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
        print(f"wrote {OUT}")
    return 0




if __name__ == "__main__":
    raise SystemExit(main())
