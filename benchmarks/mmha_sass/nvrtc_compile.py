"""Compile a CUDA source file to a cubin with NVRTC, through ctypes (no CUDA toolkit install, no GPU).

NVRTC is the CUDA front end, NVVM and ptxas of its release, run in-process; the PyPI wheel
``nvidia-cuda-nvrtc-cu12`` ships it as ``libnvrtc.so.12``. The compiler log (``--ptxas-options=-v`` gives the
registers and stack) goes to stderr.

usage: python nvrtc_compile.py LIBNVRTC SOURCE.cu OUT.cubin [NVRTC options...]
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path


class NvrtcError(RuntimeError):
    """An NVRTC call failed."""


def _check(lib: ctypes.CDLL, result: int, what: str) -> None:
    if result != 0:
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise NvrtcError(f"{what}: {lib.nvrtcGetErrorString(result).decode()}")


def version(lib: ctypes.CDLL) -> str:
    """NVRTC's version, ``major.minor``."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return f"{major.value}.{minor.value}"


def compile_cubin(library: str, source: str | Path, options: list[str]) -> tuple[bytes, str]:
    """Compile the file ``source`` with the NVRTC shared library ``library`` and ``options``; returns the cubin and
    the compiler log. Raises :class:`NvrtcError` (after printing the log) if the compile fails."""
    lib = ctypes.CDLL(library)
    program = ctypes.c_void_p()
    text = Path(source).read_bytes()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(program), text, str(source).encode(), 0, None, None), "create")
    encoded = [option.encode() for option in options]
    result = lib.nvrtcCompileProgram(program, len(encoded), (ctypes.c_char_p * len(encoded))(*encoded))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(program, log)
    log_text = log.value.decode(errors="replace")
    if result != 0:
        sys.stderr.write(log_text)
    _check(lib, result, "compile")
    lib.nvrtcGetCUBINSize(program, ctypes.byref(size))
    cubin = ctypes.create_string_buffer(size.value)
    _check(lib, lib.nvrtcGetCUBIN(program, cubin), "get cubin")
    lib.nvrtcDestroyProgram(ctypes.byref(program))
    return cubin.raw, log_text


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    library, source, out = sys.argv[1:4]
    try:
        cubin, log = compile_cubin(library, source, sys.argv[4:])
    except NvrtcError as error:
        raise SystemExit(str(error)) from None
    sys.stderr.write(log)
    Path(out).write_bytes(cubin)
    print(f"nvrtc {version(ctypes.CDLL(library))}: wrote {out} ({len(cubin)} bytes)")


if __name__ == "__main__":
    main()
