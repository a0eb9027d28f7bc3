"""Software stacks that issue a GPU program (``--set stack=kernels|eager|graph|engine``): host time per op and per
step, from published measurements of each stack.

A stack adds a ``host`` resource to the program: one host task per step (sampling the token, the step's Python or
C++ loop, synchronising on the result) before the step's first kernel and, in ``eager``, one host task per kernel
(dispatching its ops). A kernel starts when the GPU is free **and** its host task is done, so the host runs ahead
of the GPU while kernels are long and the GPU idles while they are short (the CPU-bound regime of eager decode).

- ``kernels`` (default): the GPU's kernel time alone, launched back to back (no host model; what hwsim reported
  before stacks existed).
- ``eager``: PyTorch eager (Hugging Face transformers, gpt-fast without compile): every op is dispatched by Python
  and the ATen dispatcher before its kernel is launched. Host time per op of the graph: :data:`EAGER_HOST_PER_OP`.
  The graph's op count is a proxy, exported by another framework version: with ``--set host_dispatches=N`` (the
  ATen ops the user's framework dispatches per forward pass, as ``benchmarks/eager_dispatch.py`` counts them) the
  host time is N x :data:`EAGER_HOST_PER_DISPATCH`, spread over the graph's ops. With
  ``--set eager_dispatch=kernels`` the host dispatches once per kernel hwsim launches instead of once per op of the
  graph: a framework whose own fused modules launch one kernel per call (TinyChat's FP16 Llama).
- ``graph``: the step's kernels replayed from one CUDA graph (torch.compile ``mode="reduce-overhead"``, llama.cpp
  and vLLM decode graphs): kernels pay the preset's ``graph_launch_overhead``, the host only launches the graph
  and samples: :data:`GRAPH_HOST_PER_STEP`.
- ``engine``: a C++ inference engine launching each kernel from the host (FasterTransformer): kernels pay the
  preset's ``launch_overhead``, plus the engine's per-step host work (sampling, finished-sequence checks, the
  copies and synchronisation of each step): :data:`ENGINE_HOST_PER_STEP`.

Host costs are properties of the software and the host CPU, not of the GPU: the values below are the published
measurements they were derived from, on the machines named there.
"""

from __future__ import annotations

STACKS = ("kernels", "eager", "graph", "engine")

#: seconds of host time per op in PyTorch eager: the median over the published eager machines of the host time per op
#: at which hwsim's eager decode step equals the measured one, taking only points that are clearly host-bound in hwsim
#: (its kernels alone at most half the measured step; nearer the GPU's bound the value would absorb what the GPU model
#: misses). hardware/calibration/published.yaml holds every ``stack: eager`` point; simulator/validation/gpu_eager.py
#: computes the values (a machine's is the median of its points', each counted in the example graph's ops) and a
#: heavy test pins this constant to their median. The machines that identify one, in us per op: 30.1 IBM
#: foundation-model-stack's benchmark (PR #34, LLaMA 7B, one A100); 24.2 gpt-fast's eager baseline
#: (pytorch.org/blog/accelerating-generative-ai-2/, Nov 2023, Llama-7B, A100-80GB at 330 W); 18.2 Hugging Face
#: transformers in optimum's GPTQ benchmark (huggingface/optimum tests/benchmark/README.md @ 11e71e26, Llama-2-13B,
#: A100-SXM4-80GB, batch 1); 14.9 litgpt's generate/base.py (PR #726, open_llama_7b, A100-SXM4-40GB); 14.9
#: transformers 4.46.3 / torch 2.5.1 in bitsandbytes' benchmark (bitsandbytes benchmarking/README.md @ 1b7b9bb4,
#: Llama 3.1 8B and Qwen 2.5 32B on an H100 SXM). TinyChat's RTX 4090 and Jetson Orin rows and bitsandbytes' RTX 4090
#: rows are too near the GPU's bound in hwsim to identify one. The rule was chosen after the first three machines'
#: values had been computed; the last two came later and did not change it. Hosts differ (14.9-30.1 us here) and no
#: source names its CPU: set your own with ``--set host_op_us=``, or give your framework's dispatch count.
#: reports/gpu_validation.md checks each machine with the median of the others' (leave-one-machine-out).
EAGER_HOST_PER_OP = 18.2e-6
#: seconds per op: the least and the most host time per op of the published eager machines that identify one (the
#: values above). ``simulate`` reports an eager run's latency at both ends when the user has not set ``host_op_us``
#: (a heavy test pins the pair to simulator/validation/gpu_eager.py).
EAGER_HOST_PER_OP_SPAN = (14.9e-6, 30.1e-6)
#: seconds of host time per ATen op dispatched (views and metadata ops included), for runs that give the framework's
#: count with ``--set host_dispatches=``: the median over the published eager machines, each point predicted with the
#: ATen ops its source's framework dispatches per decode step (hardware/calibration/host/eager_dispatch.json, counted
#: on the CPU by benchmarks/eager_dispatch.py at the source's framework version or commit), by the same rule and
#: leave-one-machine-out check as :data:`EAGER_HOST_PER_OP`. The machines' values, in us per dispatch: 20.1 IBM
#: foundation-model-stack (2,419 dispatches per LLaMA-7B step; its script runs under torch.set_default_device, whose
#: Python TorchFunctionMode intercepts every torch call: at most a part of the excess, not modelled); 12.3 litgpt
#: (1,947 per open_llama_7b step); 9.60 gpt-fast's eager baseline (4,068 per Llama-7B step); 9.44 transformers 4.35
#: in optimum's GPTQ benchmark (3,888 per Llama-2-13B step); 9.37 transformers 4.46.3 in bitsandbytes' benchmark
#: (2,738 per Llama 3.1 8B step, 5,377 per Qwen 2.5 32B step; its six points 8.8-10.1). The first three machines
#: counted (gpt-fast, transformers 4.35 and 4.46.3) differ by 2.5% in dispatches and by 63% in graph ops; litgpt and
#: FMS, added after, are held-out checks of that agreement (litgpt 1.3x, FMS 2.1x the others' median). The unit
#: (every ATen op, views included) was chosen after a first look at raw step / count ratios in both it and the count
#: of ops that are not views (spreads 8% and 14% on the first three).
EAGER_HOST_PER_DISPATCH = 9.60e-6
#: seconds per dispatch: the least and the most of the machines' values above (pinned like EAGER_HOST_PER_OP_SPAN)
EAGER_HOST_PER_DISPATCH_SPAN = (9.37e-6, 20.1e-6)
#: seconds of host time per step with CUDA graphs: one graph launch, the token's sampling and the step's
#: synchronisation. Graph replay of a chain of kernels costs "~15 us fixed plus ~0.58 us per node" (ahrefs/ocannl
#: issue #488, RTX 5070 Ti, CUDA 13; docs/research/gpu_published_gemm.md 3.1); the per-node part is in the preset's
#: graph_launch_overhead, the fixed part is this.
GRAPH_HOST_PER_STEP = 15e-6
#: seconds of host time per generated token of FasterTransformer. Derived from its GPT-350M row (512 in / 32 out,
#: FP16, batch 1, A100-80GB SXM4: 92.01 ms total; NVIDIA/FasterTransformer docs/gpt_guide.md @ 07fdd2fc): the
#: measured total minus hwsim's kernel-only prediction (--set stack=kernels, with FasterTransformer's own decode
#: attention, --set attention=mmha), over the 32 steps: (92.01 - 42.37) ms / 32. That point is circular in
#: reports/gpu_validation.md; the GPT-350M 128/8 and both GPT-1.3B rows are held out.
ENGINE_HOST_PER_STEP = 1.55e-3


def host_costs(stack: str, per_op_us: float | None = None, per_step_us: float | None = None,
               per_dispatch: bool = False) -> tuple[float, float]:
    """(host seconds per op, host seconds per step) of ``stack``; ``per_op_us`` / ``per_step_us`` (microseconds,
    ``--set host_op_us=`` / ``host_step_us=``) replace the stack's published values with the user's own host's.
    ``per_dispatch``: the ops are the framework's ATen dispatches (``--set host_dispatches=``), not the graph's."""
    eager = EAGER_HOST_PER_DISPATCH if per_dispatch else EAGER_HOST_PER_OP
    per_op, per_step = {"kernels": (0.0, 0.0), "eager": (eager, 0.0), "graph": (0.0, GRAPH_HOST_PER_STEP),
                        "engine": (0.0, ENGINE_HOST_PER_STEP)}[stack]
    return (per_op if per_op_us is None else per_op_us * 1e-6, per_step if per_step_us is None else per_step_us * 1e-6)
