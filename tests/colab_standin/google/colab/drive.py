"""``google.colab.drive`` stand-in: ``mount`` records the call; with ``COLAB_STANDIN_DRIVE``
set it links the mount point's ``MyDrive`` to that folder, as Colab's FUSE mount shows Drive."""

from __future__ import annotations

import os
from pathlib import Path

from google.colab import record


def mount(
    mountpoint: str, force_remount: bool = False, timeout_ms: int = 120000, readonly: bool = False
) -> None:
    record("drive", "mount", mountpoint, force_remount=force_remount)
    folder = os.environ.get("COLAB_STANDIN_DRIVE")
    if folder:
        point = Path(os.environ.get("COLAB_STANDIN_MOUNTPOINT", mountpoint))
        point.mkdir(parents=True, exist_ok=True)
        target = point / "MyDrive"
        if not target.exists():
            target.symlink_to(folder, target_is_directory=True)


def flush_and_unmount(timeout_ms: int = 86400000) -> None:
    record("drive", "flush_and_unmount")
