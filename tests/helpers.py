"""Small helpers shared by the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def missing_model(response) -> bool:
    """The one 5xx a request may get in the offline tests: a 503 that names a model or voice
    not on disk (only the joe voice is), never a crash."""
    return response.status_code == 503 and response.json().get("error") in (
        "model_not_downloaded", "voice_not_downloaded")


def read_tags(path: Path) -> dict[str, str]:
    """A media file's container tags as ffmpeg reads them (``-f ffmetadata``): what ffprobe
    shows as ``format.tags``."""
    from enfoads.core.media import ffmpeg_exe

    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    return dict(line.split("=", 1) for line in out.stdout.splitlines()[1:]
                if "=" in line and not line.startswith(";"))  # fmt: skip
