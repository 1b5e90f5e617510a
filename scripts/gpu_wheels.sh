#!/usr/bin/env bash
# Fills .gpu-wheels/ with what the GPU machine lacks to run scripts/gpu_check.sh: the project's own
# wheel, and Keras with the packages it and recipes need that are not there. Run here (it needs the
# package index), from anywhere in the checkout; then carry .gpu-wheels to the GPU machine.
#
#     bash scripts/gpu_wheels.sh
#
# The GPU machine: Python 3.12, x86-64, no network, with jax, torch, numpy, h5py, ml-dtypes,
# tensorboard, protobuf, absl-py, rich (and its markdown-it-py, mdurl, pygments), packaging,
# typing-extensions, matplotlib, pillow, pyyaml and scipy (the device notes' package list), but no
# Keras. So Keras comes with the three of its needs that are missing (namex, optree, and
# tensorboardX for recipes), pinned to the versions tested here. A package already there is used
# as it is (gpu_check.sh installs only what the machine lacks).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
WHEELS=.gpu-wheels
# what the machine lacks, at the versions the tests here run
PACKAGES=(keras==3.15.1 namex==0.1.0 optree==0.20.0 tensorboardX==2.6.5)

rm -rf "$WHEELS"
mkdir -p "$WHEELS"
# the project, from the working tree as it is now (rerun this after changing recipes/)
"$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" .
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" "${PACKAGES[@]}"

# every need of what is brought is brought too, or on the machine's list (not extras, not other Pythons)
"$PYTHON" - "$WHEELS" <<'EOF'
import pathlib, re, sys, zipfile

THERE = {"numpy", "h5py", "ml-dtypes", "absl-py", "rich", "packaging", "protobuf", "typing-extensions",
         "matplotlib", "pillow", "pyyaml", "tensorboard", "jax", "torch", "scipy"}
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
wheels = sorted(pathlib.Path(sys.argv[1]).glob("*.whl"))
brought = {norm(w.name.split("-")[0]) for w in wheels}
missing = []
for wheel in wheels:
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    for line in meta.splitlines():
        if not line.startswith("Requires-Dist:") or "extra ==" in line:
            continue
        marker = line.split(";", 1)[1] if ";" in line else ""
        if "python_version" in marker and not eval(  # noqa: S307 (our own wheels' metadata)
            re.sub(r"python_version\s*([<>=!]+)\s*['\"]([\d.]+)['\"]",
                   lambda m: f"(3, 12) {m[1]} {tuple(map(int, m[2].split('.')))}", marker)
        ):
            continue
        need = norm(re.match(r"Requires-Dist:\s*([A-Za-z0-9_.-]+)", line)[1])
        if need not in brought and need not in THERE:
            missing.append(f"{wheel.name} needs {need}")
if missing:
    sys.exit("Not brought and not on the GPU machine: " + "; ".join(missing))
EOF

ls -l "$WHEELS"
echo "$(du -sh "$WHEELS" | cut -f1) in $WHEELS ($(ls "$WHEELS" | wc -l) wheels): carry it (run's carry: [\"$WHEELS\"])"
