#!/usr/bin/env bash
# Creates (once) the oracle's Python environment outside the repo and prints the
# path of its python. Pinned versions, so goldens regenerate the same way.
# llama-cpp-python compiles llama.cpp from source: minutes, the first time only.
#   scripts/oracle-env.sh           the oracle (goldens, bench/vs-llamacpp)
#   scripts/oracle-env.sh server    and llama-cpp-python's [server] extra, pinned with
#                                   its dependencies (bench/serve-vs-llamacpp runs
#                                   python -m llama_cpp.server); its own stamp, so
#                                   adding it never rebuilds llama.cpp
set -euo pipefail

cache="${TILLER_CACHE:-$HOME/.cache/tiller}"
venv="$cache/oracle-venv"
pins=(gguf==0.19.0 numpy==2.4.6 llama-cpp-python==0.3.36 jinja2==3.1.6)
stamp="$venv/.tiller-pins"

# llama.cpp is built for this CPU (-march=native), except AMX: on a 5th-generation
# Xeon under KVM (2026-12-05) the pinned llama.cpp's AMX matrix product died at
# its first tile instruction (SIGILL in ggml_backend_amx_mul_mat, at tilezero),
# while a program that loads a tile configuration first runs them fine. Its
# other paths (AVX-512, VNNI, the repacked Q4_K) are the ones benchmarked; the
# stamp records the build, so a different CPU rebuilds.
build_args=""
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
  build_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
  build_args+=" -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
  build_args+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
fi
wanted="${pins[*]}${build_args:+ cmake: $build_args}"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "oracle-env: building $venv with ${pins[*]} (llama.cpp compiles from source; minutes)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  # No wheel cache: a wheel built before with other CMake arguments would be reused.
  CMAKE_ARGS="$build_args" "$venv/bin/python" -m pip install -q --no-cache-dir --force-reinstall "${pins[@]}" >&2
  echo "$wanted" > "$stamp"
fi

# What `pip install 'llama-cpp-python[server]==0.3.36'` adds to the pins above.
server_pins=(uvicorn==0.55.0 click==8.5.1 h11==0.16.0 fastapi==0.165.0 starlette==1.10.0 annotated-doc==0.0.7
             anyio==4.16.0 opentelemetry-api==1.45.2 pydantic==2.14.4 pydantic_core==2.50.5
             annotated-types==0.8.0 typing-inspection==0.4.5 pydantic-settings==2.16.3 python-dotenv==1.2.4
             sse-starlette==3.7.1 starlette-context==0.3.6)
server_stamp="$venv/.tiller-server-pins"
if [ "${1:-}" = server ] && { [ ! -f "$server_stamp" ] || [ "$(cat "$server_stamp")" != "${server_pins[*]}" ]; }; then
  echo "oracle-env: adding llama-cpp-python's server extra to $venv" >&2
  "$venv/bin/python" -m pip install -q "${server_pins[@]}" >&2
  echo "${server_pins[*]}" > "$server_stamp"
fi
echo "$venv/bin/python"
