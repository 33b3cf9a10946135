"""Files and folders the studio keeps to itself: written whole or not at all, readable by
this user only. Of the studio, only its errors are imported here."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path


def write_json_aside(path: Path, data: dict) -> None:
    """``data`` as JSON in ``path``, written beside it and renamed over it (0600)."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only this user can enter (0700), made if missing. A folder at a
    predictable shared place (under TMPDIR) that another user made first, or a link there, is
    refused, never used: whoever made it could read or swap what the studio writes in it."""
    from enfoads.core.errors import UnsafeFolder

    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise UnsafeFolder(path.name)
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)  # ours, made with a looser umask: close it
    return path
