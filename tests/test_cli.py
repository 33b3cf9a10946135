import json
import subprocess
import sys


def test_enfoads_info_reports_the_settings(tmp_path):
    env = {
        "ENFOADS_DATA_DIR": str(tmp_path),
        "ENFOADS_DEVICE": "cpu",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
    }
    out = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)
    assert info["data_dir"] == str(tmp_path.resolve())
    assert info["device"] == "cpu"
    assert info["budgets"] == {"gpu_gb": 12.0, "ram_gb": 12.7}
    assert info["devices"]["ram"]["total_bytes"] > 0
    human = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "info"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "data dir" in human and str(tmp_path.resolve()) in human
