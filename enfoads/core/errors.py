"""Errors that name the problem, in the user's language, with an HTTP status to match.

Every error a user can cause is an ``EnfoadsError``: the widget shows ``message(lang)``, the
server answers ``status`` with ``to_dict(lang)``, and the job record stores the same message.
"""

from __future__ import annotations

import errno
import re
from typing import Any

from enfoads.core.i18n import t


class EnfoadsError(Exception):
    """A problem the user can act on. ``str()`` is the English text, for logs."""

    status = 400

    def __init__(self, key: str, *, field: str | None = None, **params: Any):
        self.key = key
        self.field = field
        self.params = dict(params, field=field) if field is not None else dict(params)
        super().__init__(self.message("en"))

    def message(self, lang: str = "es") -> str:
        return t(self.key, lang, **self.params)

    def to_dict(self, lang: str = "es") -> dict[str, Any]:
        return {
            "error": self.key.removeprefix("error."),
            "message": self.message(lang),
            "field": self.field,
        }


class InvalidInput(EnfoadsError):
    status = 422


class InvalidSetting(InvalidInput, ValueError):
    """A bad ``ENFOADS_`` variable or settings.json: the command line says which, no traceback."""


class NotFound(EnfoadsError):
    status = 404

    def __init__(self, what: str, id: str):
        super().__init__("error.not_found", what=what, id=id)  # ``what``: noun.<what>


class TooLarge(EnfoadsError):
    status = 413


class UnsafePath(EnfoadsError):
    status = 400

    def __init__(self, path: str):
        super().__init__("error.unsafe_path", path=path)


class UnsafeFolder(EnfoadsError):
    """A folder at a shared, predictable place that is not this user's own."""

    status = 500

    def __init__(self, name: str):
        super().__init__("error.unsafe_folder", name=name)


class ModelUnavailable(EnfoadsError):
    status = 503

    def __init__(self, model: str, reason: str):
        super().__init__("error.model_unavailable", model=model, reason=reason)


class ModelNotDownloaded(EnfoadsError):
    """Not on disk, and the hub cannot be reached to download it (offline, or no network)."""

    status = 503

    def __init__(self, model: str):
        super().__init__("error.model_not_downloaded", model=model)


class VoiceNotDownloaded(EnfoadsError):
    status = 503

    def __init__(self, voice: str, available: list[str]):
        super().__init__("error.voice_not_downloaded", voice=voice, voices=list(available))


class ModelTooLarge(EnfoadsError):
    status = 507

    def __init__(self, model: str, size_bytes: int, budget_bytes: int, where: str):
        super().__init__(
            "error.model_too_large",
            model=model,
            size_gb=size_bytes / 1024**3,
            budget_gb=budget_bytes / 1024**3,
            where=where,
        )


class AssetInUse(EnfoadsError):
    """Deleting an asset the brand kit uses needs a confirmation (``confirm=True``)."""

    status = 409

    def __init__(self, name: str, role: str):
        from enfoads.core.i18n import Reason

        super().__init__("error.asset_in_kit", name=name, role=Reason(f"noun.kit_{role}"))


class JobStateError(EnfoadsError):
    status = 409

    def __init__(self, id: str, state: str, action: str):
        super().__init__("error.job_state", id=id, state=state, action=action)


class JobCancelled(Exception):
    """Raised inside a running job when its cancellation token is set."""


class JobTimedOut(EnfoadsError):
    """A job ran past its kind's time limit (``ENFOADS_JOB_TIMEOUTS_S``)."""

    status = 504

    def __init__(self, kind: str, limit_s: float):
        limit = f"{limit_s:.0f} s" if limit_s < 120 else f"{limit_s / 60:.0f} min"
        super().__init__("error.job_timeout", kind=kind, limit=limit)


class DiskFull(EnfoadsError):
    status = 507

    def __init__(self) -> None:
        super().__init__("error.disk_full")


class StorageUnavailable(EnfoadsError):
    """The asset bucket (``ENFOADS_STORAGE=s3``) did not answer or refused: nothing was
    stored or changed; the reason is S3's error code, never a URL or a key."""

    status = 503

    def __init__(self, bucket: str, reason: str):
        super().__init__("error.storage_unavailable", bucket=bucket, reason=reason)


class GpuOutOfMemory(EnfoadsError):
    status = 503  # try again once other work has left the GPU

    def __init__(self) -> None:
        super().__init__("error.gpu_memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """The GPU ran out of memory, as torch, onnxruntime or CTranslate2 say it (onnxruntime,
    for a cuBLAS or cuDNN handle it cannot create: "CUBLAS failure 3: the resource allocation
    failed"; for its arena: "Failed to allocate memory for requested buffer")."""
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return any(
        words in text
        for words in (
            "out of memory",
            "_status_alloc_failed",
            "resource allocation failed",
            "failed to allocate memory",
            "cudaerrormemoryallocation",
        )
    )


_PATH = re.compile(r"""(?:[A-Za-z]:)?(?:[\\/][^\s'"\\/:]+){2,}[\\/]?""")


def public_reason(exc: BaseException, limit: int = 200) -> str:
    """What may be shown of an unexpected exception: its type and first line, with file paths
    replaced by ``<file>`` (temp dirs, the data dir and blob paths stay in the log)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    text = _PATH.sub("<file>", first)
    return f"{type(exc).__name__}: {text}"[:limit] if text else type(exc).__name__


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class EngineFenced(EnfoadsError):
    """This engine lost its lease (another took the data dir while it was paused): it must not
    write until it gets the lease back."""

    status = 503

    def __init__(self) -> None:
        super().__init__("error.engine_fenced")
