"""The Colab notebook runs top to bottom against the tiny offline models: as plain code, and
under nbval in a real kernel with the stand-in google.colab (tests/colab_standin)."""

import json
import os
import subprocess
import sys

import pytest

from tests.colab.run_notebook import NOTEBOOK, check_colab_calls, colab_calls, run, set_form


def test_notebook_cells_run_with_the_offline_models(tmp_path):
    pytest.importorskip("IPython")
    from enfoads.testing.sdxl import build_sdxl_folders

    nb = set_form(json.loads(NOTEBOOK.read_text(encoding="utf-8")), WAIT_FOR_JOBS=True)
    assert nb["nbformat"] == 4 and nb["metadata"]["colab"]["gpuType"] == "T4"
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "colab-install" in cells[0]["metadata"]["tags"]
    code = "\n\n".join("".join(c["source"]) for c in cells)
    models = build_sdxl_folders(tmp_path / "models")
    env = dict(
        os.environ,
        ENFOADS_DATA_DIR=str(tmp_path / "data"),
        ENFOADS_DEVICE="cpu",
        ENFOADS_IMAGE_BASE_MODEL=str(models["base"]),
        ENFOADS_IMAGE_UNET_MODEL=str(models["unet"]),
        ENFOADS_IMAGE_VAE_MODEL=str(models["vae"]),
        HF_HUB_OFFLINE="1",
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "Dispositivo / device: cpu" in text
    assert "vertical composition" in text  # the magic prompt for 9:16
    assert "100.0%  Completado" in text  # Spanish by default
    for placement in ("9:16  seed=", "1:1  seed=", "16:9  seed="):
        assert placement in text
    assert "3 recursos / assets" in text


@pytest.mark.slow
def test_nbval_runs_the_notebook_as_colab_would(tmp_path):
    """nbval (lax: every cell must run without error; outputs vary with the machine) in a real
    Jupyter kernel, with the stand-in google.colab: Drive mounted, secrets read, no custom
    widget manager, and the cells waiting for their jobs."""
    pytest.importorskip("nbval")
    out = run(tmp_path)
    assert out.returncode == 0, out.stdout[-4000:]
    code_cells = sum(c["cell_type"] == "code" for c in json.loads(NOTEBOOK.read_text())["cells"])
    assert f"{code_cells} passed" in out.stdout
    calls = colab_calls(tmp_path)
    assert calls and check_colab_calls(calls) == []
    assert not any(c["call"] == "output.enable_custom_widget_manager" for c in calls)


@pytest.mark.slow
def test_a_cell_whose_job_fails_fails_nbval(tmp_path):
    """No model at all: the generation job fails, and so does its cell (it used to print a
    warning and go on, so nbval passed without any model)."""
    pytest.importorskip("nbval")
    out = run(tmp_path, env={"ENFOADS_IMAGE_UNET_MODEL": str(tmp_path / "no-such-model")})
    assert out.returncode != 0
    assert "JobFailed" in out.stdout and "1 failed" in out.stdout, out.stdout[-3000:]


def test_the_form_is_set_like_a_user_would():
    nb = set_form(
        json.loads(NOTEBOOK.read_text(encoding="utf-8")), SOURCE="/src", WAIT_FOR_JOBS=True
    )
    code = "".join("".join(c["source"]) for c in nb["cells"])
    assert "SOURCE = '/src'  #@param" in code and "WAIT_FOR_JOBS = True  #@param" in code
    with pytest.raises(ValueError):
        set_form(nb, NO_SUCH_FIELD=1)
