#!/usr/bin/env bash
# Rebuild and recount the SASS of TensorRT-LLM's MMHA decode kernel (no GPU needed); see README.md.
#
#   TRTLLM=/path/to/TensorRT-LLM bash benchmarks/mmha_sass/run.sh [--out DIR] [--nvcc13] [--jobs N]
#
# TRTLLM is a TensorRT-LLM checkout at commit 71d8d4d3dc655671f32535d6d2b60cab87f36e87 (only the 46 files listed in
# trtllm_files.txt are read, and each is checked against that commit's blob id). The CUDA wheels come from PyPI into
# ${MMHA_SASS_CACHE:-$HOME/.cache/hwsim-mmha-sass}; everything built goes to --out (default: that cache's out/).
# Toolchain overrides (existing environments): MMHA_SASS_NVRTC_VENV (nvidia-cuda-nvrtc-cu12 12.3.107 and
# nvidia-cuda-runtime-cu12 12.3.101), MMHA_SASS_CU13_VENV (nvidia-cuda-nvdisasm and -cuobjdump 13.2.51, plus nvcc
# 13.0.88 for --nvcc13), MMHA_SASS_PY_VENV (numpy, ml_dtypes), MMHA_SASS_CCCL (an include directory of CCCL 2.5).
# HWSIM_PYTHON is the python that can import the repository (for the comparison with hardware/gpu/attention.py).
set -euo pipefail

COMMIT=71d8d4d3dc655671f32535d6d2b60cab87f36e87
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${MMHA_SASS_CACHE:-$HOME/.cache/hwsim-mmha-sass}
OUT=""
NVCC13=0
JOBS=2
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --nvcc13) NVCC13=1; shift ;;
    --jobs) JOBS=$2; shift 2 ;;
    --trtllm) TRTLLM=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$CACHE/out}
case "$(cd "$(dirname "$OUT")" 2>/dev/null && pwd)/" in
  "$REPO"/*) echo "--out must lie outside the repository ($REPO)" >&2; exit 2 ;;
esac
: "${TRTLLM:?set TRTLLM to a TensorRT-LLM checkout at commit $COMMIT}"
TRTLLM=$(cd "$TRTLLM" && pwd)

# ---------------------------------------------------------------------------------------------- the TensorRT-LLM sources
if git -C "$TRTLLM" rev-parse --git-dir >/dev/null 2>&1; then
  head=$(git -C "$TRTLLM" rev-parse HEAD)
  if [ "$head" != "$COMMIT" ]; then
    echo "TRTLLM ($TRTLLM) is at commit $head, not $COMMIT: check that commit out" >&2
    [ "${MMHA_SASS_ANY_COMMIT:-0}" = 1 ] || exit 1
    echo "(MMHA_SASS_ANY_COMMIT=1: going on; the counts may differ)" >&2
  else
    echo "TRTLLM: $TRTLLM at commit $COMMIT"
  fi
else
  echo "TRTLLM: $TRTLLM is not a git checkout: checking its files against the blob ids of commit $COMMIT"
fi
bad=0
while read -r blob path; do
  if [ ! -f "$TRTLLM/$path" ]; then echo "missing: $TRTLLM/$path" >&2; bad=1; continue; fi
  got=$(git hash-object "$TRTLLM/$path")
  if [ "$got" != "$blob" ]; then echo "differs from $COMMIT: $path" >&2; bad=1; fi
done < "$HERE/trtllm_files.txt"
if [ $bad = 1 ]; then
  [ "${MMHA_SASS_ANY_COMMIT:-0}" = 1 ] || { echo "the checkout does not hold commit $COMMIT's files" >&2; exit 1; }
else
  echo "  its $(wc -l < "$HERE/trtllm_files.txt") files used here match the commit's blob ids"
fi

# ---------------------------------------------------------------------------------------------- toolchains (PyPI wheels)
make_venv() {  # make_venv DIR PACKAGES...: a venv with these pinned wheels, unless DIR exists
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then
    echo "creating $dir: $*"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q "$@"
  fi
}
site() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
NVRTC_VENV=${MMHA_SASS_NVRTC_VENV:-$CACHE/venv-nvrtc123}
CU13_VENV=${MMHA_SASS_CU13_VENV:-$CACHE/venv-cu13}
PY_VENV=${MMHA_SASS_PY_VENV:-$CACHE/venv-py}
mkdir -p "$CACHE"
make_venv "$NVRTC_VENV" nvidia-cuda-nvrtc-cu12==12.3.107 nvidia-cuda-runtime-cu12==12.3.101
make_venv "$CU13_VENV" nvidia-cuda-nvdisasm==13.2.51 nvidia-cuda-cuobjdump==13.2.51
make_venv "$PY_VENV" numpy==2.4.6 ml_dtypes==0.7.0
NV=$(site "$NVRTC_VENV")/nvidia
CU13=$(site "$CU13_VENV")/nvidia/cu13
if [ $NVCC13 = 1 ] && [ ! -x "$CU13/bin/nvcc" ]; then
  "$CU13_VENV/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
fi
if [ -z "${MMHA_SASS_CCCL:-}" ]; then  # CCCL 2.5 headers (the 12.3 cccl wheel lacks libcu++), unpacked, not installed
  MMHA_SASS_CCCL=$CACHE/cccl-12.6.77/nvidia/cuda_cccl/include
  if [ ! -d "$MMHA_SASS_CCCL" ]; then
    "$PY_VENV/bin/pip" download -q --no-deps nvidia-cuda-cccl-cu12==12.6.77 -d "$CACHE/dl"
    "$PY_VENV/bin/python" -m zipfile -e "$CACHE"/dl/nvidia_cuda_cccl_cu12-12.6.77-*.whl "$CACHE/cccl-12.6.77"
  fi
fi
PY="$PY_VENV/bin/python -W ignore"
export PATH=$CU13/bin:$PATH  # cuobjdump, nvdisasm (and nvcc 13)

# ---------------------------------------------------------------------------------------------- sources and include tree
rm -rf "$OUT/src" "$OUT/include"
mkdir -p "$OUT/src" "$OUT/include"
while read -r _ path; do
  mkdir -p "$OUT/src/$(dirname "$path")"
  cp "$TRTLLM/$path" "$OUT/src/$path"
done < "$HERE/trtllm_files.txt"
cp "$HERE/mmha_inst.cu" "$OUT/mmha_inst.cu"
cp -r "$HERE/stubs/nvrtc/." "$OUT/include/"
for h in algorithm assert.h cassert cinttypes cmath cstdint cstdio cstdlib float.h limits stdint.h stdio.h stdlib.h \
         type_traits; do
  printf '#pragma once\n#include "std_shim.h"\n' > "$OUT/include/$h"
done
for h in cuda.h cuda_runtime_api.h; do printf '#pragma once\n#include "cuda_runtime.h"\n' > "$OUT/include/$h"; done
$PY "$HERE/gen_memory_utils.py" "$TRTLLM" "$OUT/include/tensorrt_llm/common/memoryUtils.h"

# ---------------------------------------------------------------------------------------------- build and disassemble
BUILD=$OUT/nvrtc123
mkdir -p "$BUILD"
build_one() {  # build_one fp16|fp8 80|90
  local cache=$1 sm=$2 ct=uint16_t
  [ "$cache" = fp8 ] && ct=__nv_fp8_e4m3
  [ "$cache" = int8 ] && ct=int8_t
  local o=$BUILD/mmha_${cache}_mbfalse_sm$sm
  (cd "$OUT" && LD_LIBRARY_PATH=$NV/cuda_nvrtc/lib $PY "$HERE/nvrtc_compile.py" "$NV/cuda_nvrtc/lib/libnvrtc.so.12" \
     mmha_inst.cu "$o.cubin" -arch=sm_$sm -std=c++17 -DNDEBUG -DENABLE_BF16 -DENABLE_FP8 "-DCACHE_T=$ct" -DMB=false \
     -default-device --ptxas-options=-v -Iinclude -Isrc/cpp -Isrc/cpp/include "-I$MMHA_SASS_CCCL" \
     "-I$NV/cuda_runtime/include") > "$o.ptxas.txt" 2>&1 || { echo "compile failed: $o.ptxas.txt" >&2; return 1; }
  cuobjdump -sass "$o.cubin" > "$o.sass"
  cuobjdump --dump-resource-usage "$o.cubin" > "$o.res.txt"
  nvdisasm -c "$o.cubin" > "$o.nvdisasm.sass" 2> "$o.nvdisasm.log"
}
emulate_one() {  # emulate_one NAME
  $PY "$HERE/block.py" "$BUILD" "$1" --json "$OUT/block_$1.json" > "$OUT/block_$1.txt"
}
parallel() {  # parallel FUNCTION ARGS...: FUNCTION on each argument (split on ':'), $JOBS at a time
  local fn=$1 pids=() status=0 pid; shift
  for item in "$@"; do
    # shellcheck disable=SC2086
    $fn ${item//:/ } &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 0.2; done
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return $status
}
CONFIGS=(fp16:80 fp16:90 fp8:80 fp8:90 int8:80 int8:90)
NAMES=(mmha_fp16_mbfalse_sm80 mmha_fp16_mbfalse_sm90 mmha_fp8_mbfalse_sm80 mmha_fp8_mbfalse_sm90 mmha_int8_mbfalse_sm80 mmha_int8_mbfalse_sm90)
echo "compiling the ${#CONFIGS[@]} builds with NVRTC 12.3 into $BUILD ..."
parallel build_one "${CONFIGS[@]}"
grep -H "Used" "$BUILD"/*.ptxas.txt | sed "s|$BUILD/||"
echo "counting the per-key loops ..."
$PY "$HERE/loops.py" "$BUILD" --json "$OUT/loops.json" --classes > "$OUT/loops.txt"
echo "emulating one block of each build ..."
parallel emulate_one "${NAMES[@]}"
cat "$OUT"/block_*.txt

if [ $NVCC13 = 1 ]; then  # cross-check: nvcc 13.0 with TensorRT-LLM's Release CMake flags
  echo "cross-check: nvcc 13.0 into $OUT/nvcc13 ..."
  mkdir -p "$OUT/nvcc13"
  cp -r "$HERE/stubs/nvcc13" "$OUT/include-nvcc13"
  for cfg in "${CONFIGS[@]}"; do
    cache=${cfg%:*} sm=${cfg#*:} ct=uint16_t
    [ "$cache" = fp8 ] && ct=__nv_fp8_e4m3
    o=$OUT/nvcc13/mmha_${cache}_mbfalse_sm$sm
    (cd "$OUT" && nvcc -cubin -arch=sm_$sm -O3 -DNDEBUG -std=c++17 --expt-extended-lambda --expt-relaxed-constexpr \
       -DENABLE_BF16 -DENABLE_FP8 -Isrc/cpp -Isrc/cpp/include -Iinclude-nvcc13 -include cccl13_compat.h \
       "-DCACHE_T=$ct" -DMB=false -Xptxas -v mmha_inst.cu -o "$o.cubin") 2> "$o.ptxas.txt"
    nvdisasm -c "$o.cubin" > "$o.nvdisasm.sass" 2> "$o.nvdisasm.log"
  done
  $PY "$HERE/loops.py" "$OUT/nvcc13" --json "$OUT/nvcc13/loops.json"
fi

echo
HWSIM_PYTHON=${HWSIM_PYTHON:-python3}
"$HWSIM_PYTHON" "$HERE/report.py" "$OUT"
echo "(outputs in $OUT: nvrtc123/ cubins, SASS and ptxas logs; loops.txt per-class tables; block_*.json per warp)"
