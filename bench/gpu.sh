#!/usr/bin/env bash
# The GPU measurement (bench/gpu.py) as one prepared run on a machine that reaches no registry.
#
#   bench/gpu.sh fetch          # here, with PyPI: what the GPU image lacks, into .gpu/ (~32 MB)
#   bench/gpu.sh check          # here: gpu.py --dry-run on the GPU image's packages + .gpu/ alone
#   bench/gpu.sh run [ARGS]     # there (device tool, carry .gpu): install .gpu/, gpu.py, ≤ 6 min
#
# The GPU image has Python 3.12 with torch, numpy, scipy, PyYAML, requests, tqdm, scikit-learn and
# more (../.library/device/KINDS.md); it lacks FunASR and the few packages its loader and
# courtscribe's engine import. `fetch` takes exactly those, at the versions of requirements.lock, as
# cp312 manylinux wheels (jieba and antlr4 come as sdists: pure Python, built there offline), and
# the zh-smoke clips gpu.py reads (../shared does not travel). `run` writes bench/out/gpu-DATE.json
# and copies it and the log to $OUT when set (the device tool brings $OUT back).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu
PACKAGES=(funasr omegaconf hydra-core kaldi-native-fbank kaldiio librosa audioread soxr soundfile
  opencc pydantic pydantic-core pydantic-settings python-dotenv annotated-types typing-inspection
  structlog rapidfuzz decorator pooch torch-complex jaconv jiwer cffi)
SDISTS=(jieba antlr4-python3-runtime)
CLIPS=(market_25s.wav justice.wav news_kfc.wav)

pinned() {  # name==version as requirements.lock pins it
  local line
  line=$(grep -i -m1 "^$1==" requirements.lock) || { echo "$1 is not in requirements.lock" >&2; exit 1; }
  echo "${line%% *}"
}

fetch() {
  local py=${1:-3.12} platforms=()
  for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64 \
           manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64; do
    platforms+=(--platform "$p")
  done
  rm -rf "$CARRY/whl" && mkdir -p "$CARRY/whl" "$CARRY/data/zh-smoke"
  for name in "${PACKAGES[@]}"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
      "${platforms[@]}" -d "$CARRY/whl" "$(pinned "$name")"
  done
  for name in "${SDISTS[@]}"; do
    python3 -m pip download -q --no-deps --no-binary=:all: -d "$CARRY/whl" "$(pinned "$name")"
  done
  for clip in "${CLIPS[@]}"; do cp "../shared/data/zh-smoke/$clip" "$CARRY/data/zh-smoke/"; done
  grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >> .git/info/exclude
  du -sh "$CARRY"
}

install() {  # $1: python; into $2, offline
  "$1" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
    --target "$2" "$CARRY"/whl/*
}

case "${1:-run}" in
  fetch)
    fetch 3.12
    ;;
  check)
    # The GPU image's packages that gpu.py needs, taken from this checkout's .venv, beside .gpu/'s
    # wheels (built for this machine's Python) and nothing else: what the GPU machine will import.
    py=$(.venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    CARRY=.gpu-check
    trap 'rm -rf .gpu-check' EXIT
    fetch "$py" >/dev/null
    image=$(mktemp -d)
    site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    for m in torch torchgen numpy scipy yaml _yaml requests urllib3 idna certifi charset_normalizer tqdm \
             sklearn joblib threadpoolctl numba llvmlite msgpack packaging lazy_loader typing_extensions \
             filelock fsspec jinja2 markupsafe networkx sympy mpmath regex click rich pygments \
             markdown_it mdurl platformdirs six setuptools sentencepiece safetensors; do
      for path in "$site/$m" "$site/$m.py" "$site"/"$m".*.so; do
        [ -e "$path" ] && ln -s "$path" "$image/"
      done
    done
    for libs in "$site"/*.libs; do ln -s "$libs" "$image/"; done
    install .venv/bin/python "$image"
    PYTHONNOUSERSITE=1 PYTHONPATH="$image:$PWD" COURTSCRIBE_TEST_DATA="$PWD/$CARRY/data" \
      .venv/bin/python -S bench/gpu.py --dry-run --out gpu-check
    rm -rf "$image"
    ;;
  run)
    shift || true
    python3 -m pip --version >/dev/null
    install python3 /tmp/gpu-site
    export PYTHONPATH="/tmp/gpu-site:$PWD" COURTSCRIBE_TEST_DATA="$PWD/$CARRY/data" PYTHONUNBUFFERED=1
    export PYANNOTE_METRICS_ENABLED=0 HF_HUB_OFFLINE=1 MODELSCOPE_OFFLINE=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    name="gpu-$(date +%F)"
    status=0
    timeout 360 python3 bench/gpu.py --budget-s 300 --out "$name" "$@" 2>&1 | tee "/tmp/$name.log" || status=$?
    if [ -n "${OUT:-}" ]; then
      cp "/tmp/$name.log" "$OUT/" || true
      cp "bench/out/$name.json" "$OUT/" 2>/dev/null || true
    fi
    exit "$status"
    ;;
  *)
    echo "usage: bench/gpu.sh fetch | check | run [gpu.py args]" >&2
    exit 2
    ;;
esac
