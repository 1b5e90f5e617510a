#!/usr/bin/env bash
# The one command for the GPU machine (docs/benchmarks/gpu.md): installs what .gpu-wheels brings (made
# here by scripts/gpu_wheels.sh) where the machine lacks it, runs scripts/gpu_check.py on JAX, then on
# PyTorch (a process each: Keras reads its backend once), then, while time is left, VGG16 on each
# without determinism; writes the report to $OUT (gpu.md, each run's JSON, the log, nvidia-smi's samples).
#
#     bash scripts/gpu_check.sh                     # on the GPU machine, .gpu-wheels carried
#     PYTHON=.venv/bin/python bash scripts/gpu_check.sh   # here: the CPU fallback, quick sizes
#
# Settings (environment): PYTHON (python3), OUT (/tmp/recipes-gpu-check-out), GPU_CHECK_BUDGET (480: seconds for
# everything; each step gets at most what is left, so the whole ends inside a 10-minute call),
# GPU_CHECK_ARGS (more arguments for every run, e.g. "--recipes mlp vgg16").
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-${TMPDIR:-/tmp}/recipes-gpu-check-out}
BUDGET=${GPU_CHECK_BUDGET:-480}
SITE=${GPU_CHECK_SITE:-/tmp/recipes-gpu-check-site}
read -r -a EXTRA <<<"${GPU_CHECK_ARGS:-}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

echo "gpu_check.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $("$PYTHON" -V 2>&1) at $(command -v "$PYTHON")"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    # the GPU's load and memory every second, beside what the frameworks say
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw,clocks.sm --format=csv -l 1 \
        >"$OUT/smi.csv" 2>/dev/null &
    SMI=$!
    trap 'kill "$SMI" 2>/dev/null' EXIT
fi

# Install only what the machine lacks, into a folder on PYTHONPATH (the device notes' way): python3
# there is itself a virtual environment (/opt/torch/.venv), so a venv made from it with
# --system-site-packages would see the base Python's packages, not its jax and torch. A package the
# machine already has is not installed: it would shadow the machine's own.
WHEELS=$("$PYTHON" - .gpu-wheels <<'EOF'
import importlib.metadata as md, pathlib, sys

for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name = wheel.name.split("-")[0]
    try:
        if name != "keras_recipes":  # the project itself always
            print(f"{name} {md.version(name)}: the machine's", file=sys.stderr)
            continue
    except md.PackageNotFoundError:
        pass
    print(wheel)
EOF
)
if [ -z "$WHEELS" ]; then
    echo "No .gpu-wheels/keras_recipes-*.whl: run scripts/gpu_wheels.sh where pip reaches the index, carry .gpu-wheels"
    exit 2
fi
rm -rf "$SITE"
# shellcheck disable=SC2086  # one path a word
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" $WHEELS || exit 2
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export RECIPES_DATA_DIR="$SITE/share/recipes/data"  # the wheel's digits.npz (data_files land there under --target)
echo "installed into $SITE: $(basename -a $WHEELS | tr '\n' ' ')"
# the wheel must be the working tree's code: if recipes/ changed since gpu_wheels.sh, the tree is run instead
STALE=$("$PYTHON" - "$SITE" <<'EOF'
import pathlib, sys

site = pathlib.Path(sys.argv[1])
wheel = {p.relative_to(site) for p in (site / "recipes").rglob("*.py")}
here = {p for p in pathlib.Path("recipes").rglob("*.py")}
print(" ".join(sorted(str(p) for p in wheel ^ here | {p for p in wheel & here if (site / p).read_bytes() != p.read_bytes()})))
EOF
)
if [ -n "$STALE" ]; then
    echo "WARNING: the project's wheel differs from the working tree ($STALE): running the tree's recipes/;" \
        "rebuild the wheel with scripts/gpu_wheels.sh"
    export PYTHONPATH="$PWD:$PYTHONPATH" RECIPES_DATA_DIR="$PWD/data"
fi
# what runs (-P: not the checkout's recipes/ from the current folder); recipes first: it tells Keras the installed
# backend where TensorFlow is absent (Keras would pick TensorFlow)
"$PYTHON" -P -c "import recipes, keras; print('recipes from', recipes.__file__, '| Keras from', keras.__file__)" || exit 2

step() {  # step NAME SECONDS ARGS...: scripts/gpu_check.py ARGS with at most SECONDS, within the budget
    local name=$1 limit=$2 left=$((BUDGET - SECONDS - 15)) start=$SECONDS
    shift 2
    ((left < limit)) && limit=$left
    if ((limit < 45)); then
        echo "=== $name skipped: ${left}s left of the ${BUDGET}s budget"
        return
    fi
    echo "=== $name (at most ${limit}s; ${SECONDS}s so far)"
    timeout --signal=INT --kill-after=15 "$limit" "$PYTHON" scripts/gpu_check.py ${EXTRA[@]+"${EXTRA[@]}"} "$@" \
        --json "$OUT/$name.json"
    echo "=== $name: exit status $? after $((SECONDS - start))s"
}

step jax 300 --backend jax
step torch 200 --backend torch
# what determinism costs the MFU figure (recipes train turns it on): PyTorch's first, it has no compile to wait for
step torch-fast 90 --backend torch --recipes vgg16 --no-deterministic
step jax-fast 150 --backend jax --recipes vgg16 --no-deterministic

"$PYTHON" scripts/gpu_check.py --report "$OUT"/{jax,torch,torch-fast,jax-fast}.json --out "$OUT/gpu.md" >/dev/null
echo
cat "$OUT/gpu.md"
echo "=== done in ${SECONDS}s; in $OUT: $(ls "$OUT" | tr '\n' ' ')"
