"""Which mapper serves which target kind (see docs/design.md, section 9)."""

from __future__ import annotations

import importlib
from types import ModuleType

from hardware.errors import HwsimError

#: Mapper module of each target kind: it provides map_workload(workload, target, options) and
#: memory_capacity_bytes(target).
MAPPERS: dict[str, str] = {
    "pim": "mapping.pim.mapper",
    "gpu": "mapping.gpu.mapper",
    "fpga": "mapping.fpga.mapper",
}

#: Options (``--mode``, ``--tp``, ``--set KEY=VALUE``) each kind's mapper reads; anything else is a user error.
OPTIONS: dict[str, dict[str, str]] = {
    "pim": {"mode": "fast | detailed (every DRAM command)", "refresh": "true | false (all-bank refresh)"},
    "gpu": {"mode": "fast | detailed (every thread block)", "tp": "tensor-parallel GPUs",
            "attention": "naive | flashdecoding | lean (decode)", "tf32": "true | false (fp32 GEMMs on tensor cores)",
            "launch": "stream | graph (kernels replayed from a CUDA graph)",
            "kv_heads": "override the KV heads found in the graph"},
    "fpga": {"mode": "fast (the only model)", "efficiency": "fraction of DSP peak reached, 0..1"},
}

#: Numeric format each kind computes in natively, used when the user gives no precision.
NATIVE_DTYPE: dict[str, str] = {"pim": "bfloat16", "gpu": "float16", "fpga": "float16"}


def mapper_for(kind: str) -> ModuleType:
    """The mapper module of target kind ``kind``."""
    if kind not in MAPPERS:
        raise HwsimError(f"no mapper for target kind '{kind}'")
    try:
        return importlib.import_module(MAPPERS[kind])
    except ImportError as exc:
        raise HwsimError(f"target kind '{kind}' is not available in this version ({exc})") from None
