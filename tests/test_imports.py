"""Import hygiene: importing the package, the widgets or the server does no heavy work."""

import json
import subprocess
import sys

import pytest

HEAVY = [
    "torch",
    "diffusers",
    "transformers",
    "onnxruntime",
    "ctranslate2",
    "faster_whisper",
    "insightface",
]


@pytest.mark.parametrize(
    "module",
    [
        "enfoads",
        "enfoads.widgets",
        "enfoads.widgets.app",
        "enfoads.server",
        "enfoads.server.app",
        "enfoads.core.studio",
        "enfoads.cli",
    ],
)
def test_import_loads_no_model_library(module):
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_building_a_studio_on_cpu_imports_no_torch(tmp_path):
    code = (
        "import json, sys; from enfoads.core.settings import load_settings; "
        "from enfoads.core.studio import Studio; "
        f"s = Studio(load_settings(data_dir={str(tmp_path)!r}, device='cpu')); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
