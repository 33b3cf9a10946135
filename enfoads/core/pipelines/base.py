"""What every pipeline shares: the model-table row and the one function that finds a file."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enfoads.core.errors import ModelNotDownloaded, ModelUnavailable
from enfoads.core.provenance import xmp_source_type

if TYPE_CHECKING:
    from enfoads.core.capability import Services
    from enfoads.core.jobs import JobContext


@dataclass(frozen=True)
class ModelFile:
    """One row of a pipeline's model table."""

    key: str
    repo: str
    filename: str | None  # None: the whole repository (a diffusers/transformers folder)
    revision: str
    licence: str
    size_bytes: int
    commercial_use: bool = True
    sha256: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "repo": self.repo,
            "file": self.filename,
            "revision": self.revision,
            "licence": self.licence,
            "size_bytes": self.size_bytes,
            "commercial_use": self.commercial_use,
            "note": self.note,
        }


class ModelWithTokenizer(tuple):
    """(model, tokenizer) that the VRAM manager can move and measure like a torch module."""

    def __new__(cls, model: Any, tokenizer: Any) -> ModelWithTokenizer:
        return super().__new__(cls, (model, tokenizer))

    def to(self, device: str) -> ModelWithTokenizer:
        self[0].to(device)
        return self

    @property
    def components(self) -> dict[str, Any]:
        return {"model": self[0]}


def quiet_model_libraries(*, diffusers: bool = False) -> None:
    """transformers' (and diffusers') own warnings and progress bars stay out of the user's
    notebook cell: "truncated to 77 tokens" six times, a cast to float32, an optional package
    missing. What matters to the user comes as the job's stage and notices; the libraries'
    errors still show."""
    import warnings

    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
    if diffusers:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()
        diffusers_logging.disable_progress_bar()


def is_local(repo: str) -> bool:
    """A folder on disk rather than a hub repo id (``name`` or ``org/name``): one that exists,
    or anything written as a path (absolute, ``./``, ``~``, or with more than one ``/``), which
    is then simply missing, never sent to the hub as a repo id."""
    return (
        Path(repo).expanduser().is_dir() or repo.startswith(("/", ".", "~")) or repo.count("/") > 1
    )


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_cache(models_dir: Path) -> Path:
    """Where hub downloads are cached: ``<data dir>/models/hub`` (HF_HOME's layout)."""
    return models_dir / "hub"


def in_cache(repo: str, filename: str, models_dir: Path) -> bool:
    """Whether ``repo/filename`` is on disk: in a local folder, or in the data dir's hub cache
    (no network)."""
    if is_local(repo):
        return (Path(repo).expanduser() / filename).exists()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, filename, cache_dir=hub_cache(models_dir)), str)


def hub_kwargs(repo: str, revision: str, models_dir: Path) -> dict[str, object]:
    """``from_pretrained`` arguments for ``repo``: none for a local folder, else the pinned
    revision, the cache in the data dir, and offline mode when the hub is off or out of
    reach."""
    if is_local(repo):
        return {}
    return {
        "revision": revision,
        "cache_dir": hub_cache(models_dir),
        # offline (or the hub unreachable now): the cache only, at once, not after the
        # hub client's own timeouts
        "local_files_only": not hub_reachable(),
    }


def local_weights_bytes(*folders: str) -> int:
    """Bytes of the safetensors under local folders (0 for hub ids): a size estimate."""
    dirs = {Path(f).expanduser() for f in folders if is_local(f)}
    return sum(p.stat().st_size for d in dirs for p in d.rglob("*.safetensors"))


def resolve_file(repo: str, filename: str, revision: str | None, cache_dir: Path) -> Path:
    """A model file from a local folder or the Hugging Face hub (cached under ``cache_dir``).

    Only ``.safetensors`` and ``.onnx`` weights are accepted: no pickle checkpoints.
    """
    if not filename.endswith((".safetensors", ".onnx", ".json", ".txt", ".model")):
        raise ModelUnavailable(f"{repo}/{filename}", "only safetensors/ONNX weights are loaded")
    if is_local(repo):
        path = Path(repo).expanduser() / filename
        if not path.is_file():
            raise ModelUnavailable(f"{repo}/{filename}", f"file not found: {path}")
        return path
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename, cache_dir=cache_dir, revision=revision)
    if isinstance(cached, str):
        return Path(cached)
    if not hub_reachable():  # at once, not after the hub client's own timeouts
        raise ModelNotDownloaded(f"{repo}/{filename}")
    try:
        return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=cache_dir))
    except Exception as exc:  # hub errors come in many classes
        raise ModelUnavailable(f"{repo}/{filename}", hub_error_reason(exc)) from exc


_PROBE: dict[str, tuple[float, bool]] = {}
_PROBE_LOCK = threading.Lock()


def hub_reachable(timeout_s: float = 1.5, ttl_s: float = 60.0) -> bool:
    """Whether the Hugging Face hub can be reached now: False at once with HF_HUB_OFFLINE,
    else a TCP connection to its host (``HF_ENDPOINT``'s, or huggingface.co) within
    ``timeout_s``, name lookup included; the answer is kept ``ttl_s`` seconds."""
    if hub_offline():
        return False
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = (
        endpoint.hostname or "huggingface.co",
        endpoint.port or (443 if endpoint.scheme == "https" else 80),
    )
    key = f"{host}:{port}"
    with _PROBE_LOCK:
        seen = _PROBE.get(key)
        if seen is not None and time.monotonic() - seen[0] < ttl_s:
            return seen[1]
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            result.append(True)
        except OSError:
            result.append(False)

    probe = threading.Thread(target=connect, name="enfoads-hub-probe", daemon=True)
    probe.start()
    probe.join(timeout_s)  # getaddrinfo has no timeout of its own
    reachable = bool(result and result[0])
    with _PROBE_LOCK:
        _PROBE[key] = (time.monotonic(), reachable)
    return reachable


def hub_error_reason(exc: Exception) -> str:
    """Why a hub download failed, in words a user can act on."""
    name = type(exc).__name__
    if "LocalEntryNotFound" in name or "OfflineMode" in name or hub_offline():
        return "not in the local cache and the hub is offline (HF_HUB_OFFLINE=1 or no network)"
    if "GatedRepo" in name:
        return "the repository is gated: accept its licence on the hub and set HF_TOKEN"
    return f"{name}: {exc}"[:300]


def ai_record(**fields: object) -> dict[str, object]:
    """The studio's provenance record of a generated file: who made it, when, from what."""
    from datetime import datetime, timezone

    from enfoads.version import __version__

    return {
        "ai_generated": True,
        "generator": f"Enfoads Studio {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }


def ai_png_text(
    description: str,
    fields: dict[str, object],
    source_type: str = "trainedAlgorithmicMedia",
) -> dict[str, str]:
    """PNG text chunks that label a file as AI-generated (plus the IPTC/XMP source type:
    ``compositeWithTrainedAlgorithmicMedia`` for a real photo a model edited)."""
    import json

    record = ai_record(**fields)
    return {
        "AI-Generated": "true",
        "Software": str(record["generator"]),
        "Description": description,
        "Source": ", ".join(map(str, record.get("models", []) or [record.get("model", "")])),
        "Creation Time": str(record["created"]),
        "enfoads": json.dumps(record, ensure_ascii=False),
        "XML:com.adobe.xmp": xmp_source_type(source_type),
    }


def ai_video_tags(
    description: str, fields: dict[str, object], licence: str | None = None
) -> dict[str, str]:
    """MP4 tags that label a video as AI-generated, as the PNG chunks do for images: the
    description, the models, the date, and a model licence that limits use (InsightFace)."""
    import json

    record = ai_record(**fields, **({"licence": licence} if licence else {}))
    tags = {
        "title": description[:120],
        "comment": f"AI-generated with {record['generator']}. " + description,
        "ai_generated": "true",
        "date": str(record["created"]),
        "encoded_by": str(record["generator"]),
        "enfoads": json.dumps(record, ensure_ascii=False),
    }
    if licence:
        tags["copyright"] = f"Model licence: {licence}"
    return tags


@contextmanager
def use_model(
    services: Services, ctx: JobContext, name: str, label: str, expected_bytes: int
) -> Iterator[Any]:
    """``services.models.use(name)`` inside a job: while the model loads (a first use downloads
    it into the data dir), the job's stage says how many GB have arrived."""
    with ExitStack() as stack:
        with ctx.watching_downloads(services.settings.models_dir, label, expected_bytes):
            model = stack.enter_context(services.models.use(name))
        yield model
