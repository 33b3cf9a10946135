"""The BrandVault: assets in the database, their files content-addressed under the data dir.

A file lives at ``assets/<sha[:2]>/<sha>.<ext>`` and is written once, atomically; two assets
with the same bytes share it, and deleting one keeps it for the other. Publishing a file with
its row, and deleting a row with its now-unused file, happen under one lock (a thread lock and
an ``flock`` on ``assets.lock`` for the other processes on this data dir), so a delete racing
an identical new asset can never take the new asset's file.

With a bucket (``ENFOADS_STORAGE=s3``, ``core.storage``) the bucket holds the files under the
same names and the folder is this host's cache of it: a file is uploaded before its row is
committed, fetched on first read, and its object deleted once no row uses it. Writers and
deleters of one file take turns through the database (a PostgreSQL advisory lock per file,
SQLite's write lock), so engines and workers on different hosts keep the count right.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from enfoads.core import events, licences, media, pngfile, provenance, storage
from enfoads.core.db import AssetRow, TagRow
from enfoads.core.errors import DiskFull, EnfoadsError, InvalidInput, NotFound, is_disk_full
from enfoads.core.i18n import Reason
from enfoads.core.validation import check_text

log = logging.getLogger(__name__)

ASSET_KINDS = (
    "image",
    "video",
    "audio",
    "avatar",
    "logo",
    "subtitle",
    "brand_kit",
    "font",
)
# Kinds only the studio writes (the brand kit's JSON): never from an upload, a tag or a delete
# sent by a client.
RESERVED_KINDS = ("brand_kit",)
UPLOAD_KINDS = tuple(k for k in ASSET_KINDS if k not in RESERVED_KINDS)
# Which file types each kind can hold (an upload claiming ``kind=font`` for a PNG is refused).
KIND_EXTS = {
    "image": media.IMAGE_EXTS,
    "avatar": media.IMAGE_EXTS,
    "logo": media.IMAGE_EXTS,
    "video": media.VIDEO_EXTS,
    "font": media.FONT_EXTS,
    "audio": media.AUDIO_EXTS,
    "subtitle": ("vtt", "srt"),
    "brand_kit": ("json",),
}
# Kinds a capability writes (``Capability.asset_kinds``: an export's ZIP), which the user may
# still tag and delete; declared when the capability registers, in every process that has it.
_WRITTEN: dict[str, tuple[str, ...]] = {}


def declare_kind(kind: str, exts: Iterable[str]) -> None:
    """A kind of asset that a capability writes, and its file types."""
    exts = tuple(exts)
    if not kind.isidentifier() or kind in KIND_EXTS or not exts:
        raise ValueError(f"asset kind {kind!r}: not an identifier, a built-in kind, or no types")
    if _WRITTEN.get(kind, exts) != exts:
        raise ValueError(f"asset kind {kind!r} is declared twice with other file types")
    _WRITTEN[kind] = exts


def asset_kinds() -> tuple[str, ...]:
    """Every kind of asset: the built-in ones, then the capabilities' own."""
    return ASSET_KINDS + tuple(_WRITTEN)


def written_kinds() -> tuple[str, ...]:
    """The kinds the capabilities write (an export's ZIP)."""
    return tuple(_WRITTEN)


def kind_exts(kind: str) -> tuple[str, ...]:
    return tuple(KIND_EXTS.get(kind) or _WRITTEN.get(kind, ()))


TMP_PREFIX = ".tmp-"
MAX_OFFSET = 10**9  # far past any real library; keeps SQLite's 64-bit integers safe
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_TAG_RE = re.compile(r"^[\w\- áéíóúñüÁÉÍÓÚÑÜ]{1,64}$")
# Face-swap inputs uploaded with a swap: kept for lineage, hidden in the vault unless asked.
INPUT_TAG = "faceswap-input"
_PREFIX = {
    "image": "img",
    "video": "vid",
    "audio": "aud",
    "avatar": "ava",
    "logo": "logo",
    "subtitle": "sub",
    "brand_kit": "kit",
    "font": "fnt",
}


def fold(text: str) -> str:
    """Text as the vault's search compares it: no accents, no case ("Campaña" -> "campana")."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search_text(name: str, prompt: str, tags: Iterable[str]) -> str:
    return fold(" \n".join([name, prompt, *tags]))


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class Asset:
    id: str
    kind: str
    name: str
    sha256: str
    ext: str
    mime: str
    size_bytes: int
    created_at: datetime
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    has_thumbnail: bool = False
    prompt: str = ""
    seed: int | None = None
    job_id: str | None = None
    parents: tuple[str, ...] = ()
    model_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    part_of: str | None = None  # the asset this one is a file of (a video's WAV, SRT, VTT)

    @property
    def url(self) -> str:
        return f"/api/assets/{self.id}/file"

    @property
    def file_name(self) -> str:
        """The name a download gets: the asset's own name (what the user called it, or what
        made it), made safe for any file system, with its extension; the id when it has none."""
        stem = self.name.rsplit(".", 1)[0] if self.name else ""
        stem = re.sub(r"[^\w]+", "-", stem).strip("-")[:80].rstrip("-")
        return f"{stem or self.id}.{self.ext}"

    @property
    def thumbnail_url(self) -> str | None:
        return f"/api/assets/{self.id}/thumbnail" if self.has_thumbnail else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "type": self.kind,
            "name": self.name,
            "sha256": self.sha256,
            "mime": self.mime,
            "size_bytes": self.size_bytes,
            "width": self.width,
            "height": self.height,
            "duration_s": self.duration_s,
            "url": self.url,
            "thumbnail_url": self.thumbnail_url,
            "prompt": self.prompt,
            "seed": self.seed,
            "job_id": self.job_id,
            "parents": list(self.parents),
            "model_ids": list(self.model_ids),
            "tags": list(self.tags),
            "meta": self.meta,
            "part_of": self.part_of,
            # clear for commercial use: the strictest licence of the models that touched it
            # and of what it was made from (True, False, or None: a licence not verified)
            "commercial_use": self.meta.get(
                "commercial_use", licences.status(self.model_ids)["commercial_use"]
            ),
            "created_at": self.created_at.isoformat() + "Z",
        }

    @classmethod
    def from_row(cls, row: AssetRow) -> Asset:
        return cls(
            id=row.id,
            kind=row.kind,
            name=row.name,
            sha256=row.sha256,
            ext=row.ext,
            mime=row.mime,
            size_bytes=row.size_bytes,
            created_at=row.created_at,
            width=row.width,
            height=row.height,
            duration_s=row.duration_s,
            has_thumbnail=row.thumb_sha256 is not None,
            prompt=row.prompt,
            seed=row.seed,
            job_id=row.job_id,
            parents=tuple(row.parents or ()),
            model_ids=tuple(row.model_ids or ()),
            tags=tuple(sorted(t.tag for t in row.tags)),
            meta=dict(row.meta or {}),
            part_of=row.part_of,
        )


@dataclass(frozen=True)
class Page:
    items: list[Asset]
    total: int
    offset: int
    limit: int
    # With ``grouped=True``: each item's own files (a video's WAV, SRT and VTT), by item id.
    parts: dict[str, list[Asset]] = field(default_factory=dict)


# zlib level 3, not Pillow's 6: about 3x faster to write a 1024² result for 7-11 % more
# bytes (benchmarks/png.py), time that counts on the 2-3 s image path.
PNG_COMPRESS_LEVEL = 3


def png_with_metadata(image: Image.Image, text: dict[str, str]) -> bytes:
    """PNG bytes whose tEXt chunks carry ``text`` (AI-generation labels travel with the file)."""
    return pngfile.encode(image, text, PNG_COMPRESS_LEVEL)


def kind_of(ext: str) -> str:
    """The asset kind an uploaded file of type ``ext`` (as ``media.sniff`` names it) becomes."""
    if ext in media.IMAGE_EXTS:
        return "image"
    if ext in media.VIDEO_EXTS:
        return "video"
    if ext in media.FONT_EXTS:
        return "font"
    return "subtitle" if ext == "vtt" else "audio"


def new_asset_id(kind: str) -> str:
    """A fresh id for an asset of ``kind`` (a pipeline that writes the id into its file's
    record takes one before it stores the file)."""
    prefix = _PREFIX.get(kind) or "".join(c for c in kind if c.isalnum())[:3] or "ast"
    return f"{prefix}_{secrets.token_hex(8)}"


def embedded_record(path: Path, ext: str) -> dict[str, Any]:
    """The record the studio wrote into a file it made (the PNG text chunk or the MP4 tag
    ``enfoads``: id, prompt, seed, job, models, date); {} for any other file."""
    raw: Any = None
    try:
        if ext == "png":
            with Image.open(path) as image:  # the chunks before the pixels: nothing decoded
                raw = image.info.get("enfoads")
        elif ext in media.VIDEO_EXTS:
            raw = media.read_tags(path).get("enfoads")
        record = json.loads(raw) if isinstance(raw, str) else None
    except (OSError, ValueError, SyntaxError, RecursionError):
        return {}
    return record if isinstance(record, dict) else {}


def _recorded_time(value: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, TypeError):
        return None
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when


class AssetStore:
    """Assets: rows in the database, bytes in content-addressed files, events on the bus."""

    def __init__(
        self,
        sessions: sessionmaker,
        root: Path,
        bus: events.EventBus,
        *,
        thumbnail_px: int = 384,
        max_upload_bytes: int = 25 * 2**20,
        max_image_pixels: int = 40_000_000,
        clock: Callable[[], datetime] = utcnow,
        writable: Callable[[], None] = lambda: None,
        credentials: provenance.Credentials | None = None,
        bucket: storage.Bucket | None = None,
    ):
        self._sessions = sessions
        self.bucket = bucket  # the shared files (root is then this host's cache of them)
        # Signs the studio's own outputs (C2PA); beside the blobs unless given.
        self.credentials = credentials or provenance.Credentials(root.parent / "provenance")
        self._writable = writable  # raises when this process may no longer write (fenced)
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._bus = bus
        self.thumbnail_px = thumbnail_px
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self._clock = clock
        self._thread_lock = threading.RLock()
        self._lock_path = self.root.with_name(self.root.name + ".lock")  # beside the blobs
        self._fill_search_columns()

    def _fill_search_columns(self) -> None:
        """Rows from before the search and grouping columns: fill them in once."""
        with self._sessions.begin() as s:
            for row in s.scalars(select(AssetRow).where(AssetRow.search_text.is_(None))):
                row.search_text = search_text(row.name, row.prompt, (t.tag for t in row.tags))
                of = (row.meta or {}).get("of")
                row.part_of = of if isinstance(of, str) and _ID_RE.match(of) else None

    # -- files -------------------------------------------------------------------------
    @contextmanager
    def _files_locked(self) -> Iterator[None]:
        """Held while a file is published with its row, or a row deleted with its file."""
        import fcntl

        with self._thread_lock, open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _blob_name(sha: str, ext: str) -> str:
        return f"{sha[:2]}/{sha}.{ext}"

    def _blob_path(self, sha: str, ext: str) -> Path:
        return media.resolve_inside(self.root, self._blob_name(sha, ext))

    @staticmethod
    def _blob_used(session: Any, sha: str, ext: str) -> bool:
        """Whether an asset of this database uses the file, as its file or its thumbnail."""
        uses = (AssetRow.sha256 == sha) & (AssetRow.ext == ext)
        if ext == "jpg":
            uses = uses | (AssetRow.thumb_sha256 == sha)
        return bool(session.scalar(select(func.count()).where(uses)))

    def _cached(self, sha: str, ext: str) -> Path:
        """The file's path on this host: with a bucket, fetched into the cache on first use
        (checked against its checksum; a copy that does not match is not kept)."""
        path = self._blob_path(sha, ext)
        if self.bucket is None or path.exists():
            return path
        self.bucket.download(self._blob_name(sha, ext), path)
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(2**20), b""):
                digest.update(chunk)
        if digest.hexdigest() != sha:
            path.unlink(missing_ok=True)
            raise InvalidInput("error.invalid", field="file", reason=Reason("reason.changed_file"))
        return path

    def _upload_missing(self, session: Any, row: AssetRow) -> None:
        """The row's file and thumbnail into the bucket, with this transaction holding both
        names (a delete of the same bytes elsewhere waits for the row to be committed)."""
        if self.bucket is None:
            return
        blobs = [(row.sha256, row.ext, row.mime)]
        if row.thumb_sha256:
            blobs.append((row.thumb_sha256, "jpg", "image/jpeg"))
        storage.lock_blobs(session, [sha for sha, _, _ in blobs])
        for sha, ext, mime in blobs:
            name = self._blob_name(sha, ext)
            if not self.bucket.has(name):
                self.bucket.upload(self._blob_path(sha, ext), name, mime)

    def _drop_unused_objects(self, blobs: list[tuple[str, str]]) -> int:
        """Delete the bucket objects of ``blobs`` that no asset uses, counted again under the
        names' lock (a writer of the same bytes on another host has committed or waits)."""
        if self.bucket is None or not blobs:
            return 0
        dropped = 0
        with self._sessions.begin() as s:
            storage.lock_blobs(s, [sha for sha, _ in blobs])
            for sha, ext in blobs:
                if not self._blob_used(s, sha, ext):
                    self.bucket.delete(self._blob_name(sha, ext))
                    dropped += 1
        return dropped

    def _sweep_bucket(self, min_age_s: float) -> int:
        """Objects no asset uses (a delete interrupted between its row and its object), older
        than ``min_age_s`` (a younger one may be a write in progress), deleted."""
        if self.bucket is None:
            return 0
        cutoff = time.time() - min_age_s
        unused = []
        for name, modified in self.bucket.names():
            sha, _, ext = name.rpartition("/")[2].partition(".")
            if modified < cutoff and re.fullmatch(r"[0-9a-f]{64}", sha) and ext:
                unused.append((sha, ext))
        dropped = 0
        for start in range(0, len(unused), 100):
            dropped += self._drop_unused_objects(unused[start : start + 100])
        return dropped

    def _stage(self, data: bytes) -> Path:
        """``data`` in a fsynced temp file under the store (renamed into place later)."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=TMP_PREFIX)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if is_disk_full(exc):
                raise DiskFull() from None
            raise
        return Path(tmp)

    def _publish(self, staged: Path, sha: str, ext: str) -> bool:
        """Move a staged file to its content address (call with the files lock held); True when
        this call created the file."""
        path = self._blob_path(sha, ext)
        if path.exists():
            staged.unlink(missing_ok=True)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, path)
        return True

    def _write_blob(self, data: bytes, ext: str) -> str:
        """Write ``data`` under its sha256 (temp file + fsync + rename); return the sha."""
        sha = hashlib.sha256(data).hexdigest()
        if self._blob_path(sha, ext).exists():
            return sha
        staged = self._stage(data)
        with self._files_locked():
            self._publish(staged, sha, ext)
        return sha

    def _files_in_use(self) -> set[str]:
        """The blob names (``<sha>.<ext>``) this database's assets and thumbnails use."""
        with self._sessions() as s:
            used = {f"{sha}.{ext}" for sha, ext in s.execute(select(AssetRow.sha256, AssetRow.ext))}
            used |= {
                f"{sha}.jpg"
                for (sha,) in s.execute(
                    select(AssetRow.thumb_sha256).where(AssetRow.thumb_sha256.is_not(None))
                )
            }
        return used

    @property
    def quarantine(self) -> Path:
        """Where files no asset of this database uses are moved, never deleted: on a shared
        data dir (two sessions on one Drive folder) another engine's database may still
        hold them, and ``restore_quarantined`` brings them back."""
        return self.root.with_name(self.root.name + "-quarantine")

    def restore_quarantined(self) -> int:
        """Put back every quarantined file that an asset of this database uses (after its
        rows came in from another session's copy); how many came back."""
        used = self._files_in_use()
        back = 0
        if not self.quarantine.is_dir():
            return 0
        with self._files_locked():
            for path in self.quarantine.iterdir():
                if path.name in used:
                    target = self._blob_path(*path.name.rsplit(".", 1))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
                    back += 1
        if back:
            log.info("asset store: %d quarantined files back in use", back)
        return back

    def reindex(self) -> ReindexReport:
        """Vault entries again for the files no asset of this database uses (a database lost,
        or replaced by another session's copy): each file in the store or its quarantine
        becomes an asset again, from the record the studio wrote into it (a PNG's text chunk,
        an MP4's tags: its id, prompt, seed, job, models and date) or, for a file without one
        (an upload), from its content (an id from its checksum, the file's date). Thumbnails
        are recognised and left; a file whose content no longer matches its name is skipped
        with the reason. Running it again finds nothing new."""
        self._writable()
        self.restore_quarantined()
        used = self._files_in_use()
        if self.bucket is not None:  # the bucket's unused objects, into the cache to be read
            for name, _ in self.bucket.names():
                if name.rpartition("/")[2] not in used and re.fullmatch(r"[0-9a-f]{2}/\S+", name):
                    self.bucket.download(name, media.resolve_inside(self.root, name))
        report = ReindexReport()
        quarantined = sorted(self.quarantine.glob("*")) if self.quarantine.is_dir() else []
        for path in sorted(self.root.glob("??/*")) + quarantined:
            if path.name in used or path.name.startswith(TMP_PREFIX) or not path.is_file():
                continue
            try:
                asset = self._reindex_file(path)
            except EnfoadsError as exc:
                report.skipped.append(path.name)
                report.reasons.append(exc)
                continue
            if asset is None:
                report.thumbnails += 1
                continue
            if path.parent == self.quarantine:
                path.unlink(missing_ok=True)  # back under its content address
            used.add(path.name)
            report.recovered.append(asset)
        if report.recovered:
            self.restore_quarantined()  # their old thumbnails, now in use again
        log.info(
            "vault re-indexed: %d files back, %d skipped, %d thumbnails",
            len(report.recovered),
            len(report.skipped),
            report.thumbnails,
        )
        return report

    def _reindex_file(self, path: Path) -> Asset | None:
        """One unused file as an asset again (``reindex``); None for a thumbnail."""
        sha, _, ext = path.name.rpartition(".")
        written = [k for k, exts in _WRITTEN.items() if ext in exts]  # an export's ZIP
        kind = (
            written[0] if written else "subtitle" if ext in KIND_EXTS["subtitle"] else kind_of(ext)
        )
        if ext not in kind_exts(kind) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise InvalidInput(
                "error.invalid", field="file", reason=Reason("reason.unknown_format")
            )
        try:
            data = path.read_bytes()
            mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except OSError as exc:
            raise InvalidInput(
                "error.invalid", field="file", reason=Reason("reason.unreadable_file")
            ) from exc
        if ext == "jpg" and media.is_thumbnail(data, self.thumbnail_px):
            return None
        if hashlib.sha256(data).hexdigest() != sha:
            raise InvalidInput("error.invalid", field="file", reason=Reason("reason.changed_file"))
        record = embedded_record(path, ext)
        asset_id = str(record.get("asset_id") or "")
        if not _ID_RE.match(asset_id):
            asset_id = f"{_PREFIX.get(kind, kind[:3])}_{sha[:16]}"
        with self._sessions() as s:
            if s.get(AssetRow, asset_id) is not None:  # its id is taken: a copy under a new one
                asset_id = f"{_PREFIX.get(kind, kind[:3])}_{sha[:16]}"
        prompt = str(record.get("prompt") or "")
        seed = record.get("seed")
        models = record.get("models")
        return self.add_bytes(
            data,
            kind,
            ext=ext,
            asset_id=asset_id,
            name=str(record.get("name") or prompt[:60] or f"{kind}-{sha[:8]}"),
            prompt=prompt,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            job_id=str(record["job_id"])[:40] if record.get("job_id") else None,
            model_ids=[str(m) for m in models] if isinstance(models, list) else (),
            meta={"recovered": True, "ai_generated": bool(record.get("ai_generated"))},
            created_at=_recorded_time(record.get("created")) or mtime.replace(tzinfo=None),
        )

    def sweep(self, min_age_s: float = 600.0) -> dict[str, int]:
        """Tidy what a killed process left: temp files go, and files no asset of this database
        uses, older than ``min_age_s`` (younger ones may belong to a write in progress), move
        to the quarantine. Run at start-up. With a bucket, the folder is a cache: unused files
        in it are deleted, and so are the bucket's objects no asset uses (``_sweep_bucket``)."""
        self.restore_quarantined()
        now = time.time()
        removed = {"temp": 0, "orphan": 0}
        if self.bucket is not None:
            removed["objects"] = self._sweep_bucket(min_age_s)
        used = self._files_in_use()
        with self._files_locked():
            for path in self.root.rglob("*"):
                try:
                    if not path.is_file() or now - path.stat().st_mtime < min_age_s:
                        continue
                except OSError:
                    continue
                if path.name.startswith((TMP_PREFIX, ".dl-")):
                    path.unlink(missing_ok=True)
                    removed["temp"] += 1
                elif path.parent.parent == self.root and path.name not in used and self.bucket:
                    path.unlink(missing_ok=True)  # a cached copy: the bucket decides
                    removed["orphan"] += 1
                elif path.parent.parent == self.root and path.name not in used:
                    self.quarantine.mkdir(parents=True, exist_ok=True)
                    os.replace(path, self.quarantine / path.name)
                    removed["orphan"] += 1
        if any(removed.values()):
            log.info(
                "asset store swept: %(temp)d temp files, %(orphan)d unused files quarantined",
                removed,
            )
        return removed

    def file_path(self, asset_or_id: Asset | str) -> Path:
        asset = self.get(asset_or_id) if isinstance(asset_or_id, str) else asset_or_id
        return self._cached(asset.sha256, asset.ext)

    def thumbnail_path(self, asset_or_id: Asset | str) -> Path | None:
        thumb = self._thumb_sha(asset_or_id)
        return self._cached(thumb, "jpg") if thumb else None

    def _thumb_sha(self, asset_or_id: Asset | str) -> str | None:
        asset_id = asset_or_id if isinstance(asset_or_id, str) else asset_or_id.id
        with self._sessions() as s:
            return self._row(s, asset_id).thumb_sha256

    def presigned_url(self, asset: Asset, ttl_s: float, thumbnail: bool = False) -> str | None:
        """A bucket URL that opens the file (or thumbnail) for ``ttl_s`` seconds; None when
        the files are in the data dir (the server sends them itself)."""
        if self.bucket is None:
            return None
        if thumbnail:
            thumb = self._thumb_sha(asset)
            name = self._blob_name(thumb, "jpg") if thumb else None
            return self.bucket.presigned(name, ttl_s, "image/jpeg", None) if name else None
        name = self._blob_name(asset.sha256, asset.ext)
        return self.bucket.presigned(name, ttl_s, asset.mime, asset.file_name)

    def read_bytes(self, asset_or_id: Asset | str) -> bytes:
        return self.file_path(asset_or_id).read_bytes()

    def open_image(self, asset_or_id: Asset | str) -> Image.Image:
        asset = self.get(asset_or_id) if isinstance(asset_or_id, str) else asset_or_id
        if asset.ext not in media.IMAGE_EXTS:
            raise InvalidInput(
                "error.invalid", field="asset_id", reason=Reason("reason.not_image", id=asset.id)
            )
        return media.decode_image(self.read_bytes(asset), asset.id, self.max_image_pixels)

    # -- adding ------------------------------------------------------------------------
    def add_bytes(
        self,
        data: bytes,
        kind: str,
        *,
        name: str = "",
        ext: str | None = None,
        asset_id: str | None = None,
        prompt: str = "",
        seed: int | None = None,
        job_id: str | None = None,
        parents: Iterable[str] = (),
        model_ids: Iterable[str] = (),
        tags: Iterable[str] = (),
        meta: dict[str, Any] | None = None,
        created_at: datetime | None = None,
        part_of: str | None = None,
        claim: provenance.Claim | None = None,
        decoded: Image.Image | None = None,
        thumbnail: bytes | None = None,
    ) -> Asset:
        """Store bytes as a new asset. Images and videos are probed and get a thumbnail.
        ``decoded``: the image ``data`` encodes, when the caller has it (the studio's own
        results): its size and thumbnail come from it, with no second decode; ``thumbnail``:
        that thumbnail, when the caller made it already.
        ``part_of``: the asset this one is a file of (shown on that asset's card);
        ``claim``: the studio made this file: it is signed (C2PA) with what made it (the
        models, the parents as ingredients, the claim's source type).

        The studio's own outputs come here directly; user uploads go through ``add_upload``,
        which applies the upload size cap first.
        """
        self._writable()
        name = check_text(name, "name")[:255]
        check_text(prompt, "prompt")
        ext, asset_id = self._accept(data, kind, ext, asset_id)
        if claim is not None and provenance.signable(ext):
            data = self._sign(data, ext, claim, name or asset_id, list(parents), list(model_ids))
        tags = [self._check_tag(t) for t in tags] + (["avatar"] if kind == "avatar" else [])
        tags = list(dict.fromkeys(tags))
        label = name or kind
        staged = self._stage(data)
        try:
            width, height, duration, thumb = self._probe(
                data, ext, staged, label, decoded, thumbnail
            )
            row = AssetRow(
                id=asset_id,
                kind=kind,
                name=name,
                sha256=hashlib.sha256(data).hexdigest(),
                ext=ext,
                mime=media.MIME_BY_EXT.get(ext, "application/octet-stream"),
                size_bytes=len(data),
                width=width,
                height=height,
                duration_s=duration,
                thumb_sha256=hashlib.sha256(thumb).hexdigest() if thumb else None,
                prompt=prompt,
                seed=seed,
                job_id=job_id,
                parents=list(parents),
                model_ids=list(model_ids),
                meta=self._licensed(dict(meta or {}), model_ids, parents),
                created_at=created_at or self._clock(),
                part_of=part_of,
                search_text=search_text(name, prompt, dict.fromkeys(tags)),
            )
            row.tags = [TagRow(tag=t) for t in tags]
            asset = self._insert(row, staged, thumb)
        finally:  # moved into place, unless something failed
            staged.unlink(missing_ok=True)
        log.info("asset %s stored (%s, %d bytes)", asset.id, kind, len(data))
        self._bus.publish(events.asset_added(asset.to_dict()))
        return asset

    def _licensed(
        self, meta: dict[str, Any], model_ids: Iterable[str], parents: Iterable[str]
    ) -> dict[str, Any]:
        """``meta`` with the new asset's ``commercial_use`` and ``licences``: the strictest of
        its models' licences, its parents' status and what the caller already said."""
        inherited = []
        with self._sessions() as s:
            for parent in parents:
                row = s.get(AssetRow, parent) if _ID_RE.match(str(parent)) else None
                if row is not None:
                    inherited.append((row.meta or {}).get("commercial_use", True))
        said = licences.status(model_ids, inherited)
        if "commercial_use" in meta:
            said["commercial_use"] = licences.strictest(
                [meta["commercial_use"], said["commercial_use"]]
            )
        return {**meta, **said}

    def _sign(
        self,
        data: bytes,
        ext: str,
        claim: provenance.Claim,
        title: str,
        parents: list[str],
        model_ids: list[str],
    ) -> bytes:
        """``data`` with its signed manifest; the parents (files the studio can read) are its
        ingredients, the one it edits as the parent. A file that cannot be signed is stored
        unsigned, and the log says why (the provenance reply then says "sin firmar")."""
        ingredients = []
        for parent_id in parents[: provenance.MAX_INGREDIENTS]:
            try:
                parent = self.get(parent_id)
            except NotFound:
                continue
            if provenance.signable(parent.ext):
                ingredients.append(
                    provenance.Ingredient(
                        parent.name or parent.file_name,
                        self.file_path(parent),
                        parent.ext,
                        "parentOf" if parent_id == claim.edits else "componentOf",
                    )
                )
        definition = provenance.manifest(
            title,
            source_type=claim.source_type,
            agents=model_ids,
            ingredients=ingredients,
            action=claim.action,
            description=claim.description,
        )
        try:
            return self.credentials.sign(data, ext, definition, tuple(ingredients))
        except Exception as exc:  # noqa: BLE001 - the file is kept; its provenance says unsigned
            log.warning("could not sign a %s file: %s", ext, str(exc)[:300])
            return data

    def provenance_of(self, asset_or_id: Asset | str) -> provenance.Report:
        """What the asset's file says of its making (its C2PA manifest, validated)."""
        asset = asset_or_id if isinstance(asset_or_id, Asset) else self.get(asset_or_id)
        return self.credentials.read(self.file_path(asset), asset.ext)

    def _accept(
        self, data: bytes, kind: str, ext: str | None, asset_id: str | None
    ) -> tuple[str, str]:
        """The file's type (sniffed when not given) and the asset's id, or the error."""
        if kind not in asset_kinds():
            raise InvalidInput(
                "error.unknown_choice", field="kind", value=kind, choices=", ".join(asset_kinds())
            )
        if not data:
            raise InvalidInput("error.empty", field="file")
        if ext is None:
            sniffed = media.sniff(data)
            if sniffed is None:
                raise InvalidInput(
                    "error.invalid", field="file", reason=Reason("reason.unknown_format")
                )
            ext = sniffed[0]
        if ext not in kind_exts(kind):
            raise InvalidInput("error.kind_mismatch", field="kind", ext=ext, kind=kind)
        if asset_id is None:
            asset_id = new_asset_id(kind)
        elif not _ID_RE.match(asset_id):
            raise InvalidInput("error.invalid", field="id", reason=Reason("reason.tag_chars"))
        return ext, asset_id

    def _probe(
        self,
        data: bytes,
        ext: str,
        staged: Path,
        label: str,
        decoded: Image.Image | None = None,
        thumbnail: bytes | None = None,
    ) -> tuple[int | None, int | None, float | None, bytes | None]:
        """Width, height, duration and thumbnail of a file: an image or font decoded (or the
        caller's ``decoded`` image and its ``thumbnail``), a video probed in its temp file (a
        bad one leaves nothing), before a frame is decoded."""
        if ext in media.IMAGE_EXTS:
            image = decoded or media.decode_image(data, label, self.max_image_pixels)
            if decoded is None or thumbnail is None:
                thumbnail = media.make_thumbnail(image, self.thumbnail_px)
            return *image.size, None, thumbnail
        if ext in media.FONT_EXTS:
            media.check_font(data, label)
            return None, None, None, media.font_thumbnail(data, self.thumbnail_px)
        if ext in media.VIDEO_EXTS:
            info = media.probe_video(staged, label)
            media.check_video_pixels(info, label)
            thumb = media.video_thumbnail(staged, self.thumbnail_px, label)
            return info.width, info.height, info.duration_s, thumb
        return None, None, None, None

    def _insert(self, row: AssetRow, staged: Path, thumb: bytes | None) -> Asset:
        """Publish the file (and its thumbnail) and insert the row, as one step: a failure
        removes the files this call created."""
        staged_thumb = self._stage(thumb) if thumb else None
        try:
            with self._files_locked():
                created = self._publish(staged, row.sha256, row.ext)
                created_thumb = staged_thumb is not None and self._publish(
                    staged_thumb, row.thumb_sha256, "jpg"
                )
                try:
                    with self._sessions.begin() as s:
                        if s.get(AssetRow, row.id) is not None:
                            raise InvalidInput(
                                "error.invalid",
                                field="id",
                                reason=Reason("reason.exists", id=row.id),
                            )
                        self._upload_missing(s, row)
                        s.add(row)
                        s.flush()
                        return Asset.from_row(row)
                except BaseException:
                    if created:
                        self._blob_path(row.sha256, row.ext).unlink(missing_ok=True)
                    if created_thumb:
                        self._blob_path(row.thumb_sha256, "jpg").unlink(missing_ok=True)
                    raise
        finally:
            if staged_thumb is not None:
                staged_thumb.unlink(missing_ok=True)

    def add_image(
        self,
        image: Image.Image,
        kind: str = "image",
        *,
        png_text: dict[str, str] | None = None,
        **fields: Any,
    ) -> Asset:
        """Store a PIL image as PNG, with ``png_text`` written into the file's text chunks (the
        thumbnail is made meanwhile, on another core)."""
        thumb = pngfile.executor().submit(media.make_thumbnail, image, self.thumbnail_px)
        data = png_with_metadata(image, png_text or {})
        return self.add_bytes(
            data, kind, ext="png", decoded=image, thumbnail=thumb.result(), **fields
        )

    def add_upload(self, data: bytes, name: str, kind: str | None = None, **fields: Any) -> Asset:
        """Store a user's upload: size cap, format check, image decode (all before writing).
        Reserved kinds (the brand kit's JSON) cannot be claimed by an upload."""
        check_text(name, "name")  # before any message names the file
        media.check_upload_size(data, name, self.max_upload_bytes)
        if kind is not None and check_text(kind, "kind") not in UPLOAD_KINDS:
            if kind in RESERVED_KINDS:
                raise InvalidInput("error.reserved_kind", field="kind", kind=kind, action="upload")
            raise InvalidInput(
                "error.unknown_choice", field="kind", value=kind, choices=", ".join(UPLOAD_KINDS)
            )
        sniffed = media.sniff(data)
        if sniffed is None:
            raise InvalidInput(
                "error.corrupt_image", name=name, reason=Reason("reason.unknown_format")
            )
        ext = sniffed[0]
        return self.add_bytes(data, kind or kind_of(ext), name=name, ext=ext, **fields)

    # -- reading -----------------------------------------------------------------------
    @staticmethod
    def _row(session: Any, asset_id: str) -> AssetRow:
        if not isinstance(asset_id, str) or not _ID_RE.match(asset_id):
            raise NotFound("asset", str(asset_id)[:80])
        row = session.get(AssetRow, asset_id)
        if row is None:
            raise NotFound("asset", asset_id)
        return row

    def get(self, asset_id: str) -> Asset:
        with self._sessions() as s:
            return Asset.from_row(self._row(s, asset_id))

    def exists(self, asset_id: str) -> bool:
        if not isinstance(asset_id, str) or not _ID_RE.match(asset_id):
            return False
        with self._sessions() as s:
            return s.get(AssetRow, asset_id) is not None

    def list(
        self,
        *,
        kind: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        job_id: str | None = None,
        offset: int = 0,
        limit: int = 50,
        grouped: bool = False,
        inputs: bool = True,
    ) -> Page:
        """Newest first, filtered by kind, tag, the job that made them, and a text search over
        name, prompt and tags that ignores accents and case.

        ``grouped``: one item per card, as the vault shows them: a video's WAV, SRT and VTT
        come in ``Page.parts`` instead of as items, and the brand kit's own record is left out.
        ``inputs=False`` leaves out the pictures uploaded only as face-swap inputs.
        """
        if kind is not None and kind not in asset_kinds():
            raise InvalidInput(
                "error.unknown_choice", field="kind", value=kind, choices=", ".join(asset_kinds())
            )
        if not 0 <= int(offset) <= MAX_OFFSET:
            raise InvalidInput(
                "error.out_of_range", field="offset", value=offset, low=0, high=MAX_OFFSET
            )
        offset = int(offset)
        limit = min(max(1, int(limit)), 500)
        query = select(AssetRow)
        if kind:
            query = query.where(AssetRow.kind == kind)
        if tag:
            query = query.where(AssetRow.tags.any(TagRow.tag == tag))
        if job_id:
            query = query.where(AssetRow.job_id == job_id)
        if grouped:
            query = query.where(AssetRow.part_of.is_(None), AssetRow.kind.not_in(RESERVED_KINDS))
        if not inputs:
            query = query.where(~AssetRow.tags.any(TagRow.tag == INPUT_TAG))
        if text and check_text(text, "q", limit=200).strip():
            pattern = "%" + re.sub(r"([%_\\])", r"\\\1", fold(text.strip())) + "%"
            query = query.where(AssetRow.search_text.like(pattern, escape="\\"))
        with self._sessions() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(
                query.order_by(AssetRow.created_at.desc(), AssetRow.id).offset(offset).limit(limit)
            ).all()
            items = [Asset.from_row(r) for r in rows]
        parts = self.parts_of([a.id for a in items]) if grouped else {}
        return Page(items, total, offset, limit, parts)

    def parts_of(self, asset_ids: list[str]) -> dict[str, list[Asset]]:
        """The files of each asset (a video's WAV, SRT, VTT), oldest first."""
        if not asset_ids:
            return {}
        found: dict[str, list[Asset]] = {}
        with self._sessions() as s:
            rows = s.scalars(
                select(AssetRow)
                .where(AssetRow.part_of.in_(asset_ids))
                .order_by(AssetRow.created_at, AssetRow.id)
            ).all()
            for row in rows:
                found.setdefault(row.part_of, []).append(Asset.from_row(row))
        return found

    # -- changing ----------------------------------------------------------------------
    @staticmethod
    def _check_tag(tag: str) -> str:
        tag = check_text(tag, "tags").strip().lower()
        if not _TAG_RE.match(tag):
            raise InvalidInput(
                "error.invalid", field="tags", reason=Reason("reason.not_tag", value=tag[:40])
            )
        return tag

    def tag(self, asset_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Asset:
        self._writable()
        add = [self._check_tag(t) for t in add]
        remove = {self._check_tag(t) for t in remove}
        with self._sessions.begin() as s:
            row = self._row(s, asset_id)
            have = {t.tag for t in row.tags}
            row.tags = [t for t in row.tags if t.tag not in remove]
            row.tags.extend(TagRow(tag=t) for t in dict.fromkeys(add) if t not in have)
            row.search_text = search_text(row.name, row.prompt, (t.tag for t in row.tags))
            s.flush()
            asset = Asset.from_row(row)
        self._bus.publish(events.asset_updated(asset.to_dict()))
        return asset

    def delete(self, asset_id: str) -> None:
        """Delete the asset; its file and thumbnail go only when no other asset uses them."""
        self._writable()
        with self._files_locked():  # no identical asset can be published meanwhile
            with self._sessions.begin() as s:
                row = self._row(s, asset_id)
                sha, ext, thumb = row.sha256, row.ext, row.thumb_sha256
                s.delete(row)
                s.flush()
                file_used = self._blob_used(s, sha, ext)
                thumb_used = thumb and self._blob_used(s, thumb, "jpg")
            if not file_used:
                self._blob_path(sha, ext).unlink(missing_ok=True)
            if thumb and not thumb_used:
                self._blob_path(thumb, "jpg").unlink(missing_ok=True)
        # The bucket's objects: counted again with their names held (another host may be
        # storing the same bytes right now); one left by a crash here goes at the next sweep.
        self._drop_unused_objects([(sha, ext)] + ([(thumb, "jpg")] if thumb else []))
        log.info("asset %s deleted", asset_id)
        self._bus.publish(events.asset_deleted(asset_id))

    # -- the seed's assets.json ----------------------------------------------------------
    def import_seed_json(self, path: Path) -> list[Asset]:
        """Import the seed backend's ``assets.json`` file (see ``import_seed``)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidInput(
                "error.invalid", field="assets.json", reason=Reason("reason.unreadable_file")
            ) from exc
        return self.import_seed(data).imported

    def import_seed(self, data: bytes) -> ImportReport:
        """Import the seed backend's ``assets.json``: a list of entries with inline ``data:``
        URLs, at most ``MAX_IMPORT_ENTRIES`` a request (a larger file is refused before
        anything is stored: split it). Each entry is read by ``SeedEntry``; one that is not an
        inline ``data:`` URL (a path or a remote URL is never read), malformed, corrupt or too
        large is skipped with its reason, the others are imported. Importing again is safe: an
        entry already in the vault (by its id, or by its content when it has none) is not
        imported twice."""
        try:
            entries = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InvalidInput(
                "error.invalid", field="assets.json", reason=Reason("reason.not_json")
            ) from exc
        if not isinstance(entries, list):
            raise InvalidInput(
                "error.invalid", field="assets.json", reason=Reason("reason.list_expected")
            )
        if len(entries) > MAX_IMPORT_ENTRIES:
            raise InvalidInput(
                "error.too_many_entries",
                field="assets.json",
                n=len(entries),
                limit=MAX_IMPORT_ENTRIES,
            )
        report = ImportReport()
        for position, raw in enumerate(entries):
            try:
                entry = SeedEntry.read(raw)
                blob = entry.blob(self.max_upload_bytes)
                asset_id = entry.asset_id(blob)
                with self._sessions() as s:
                    if s.get(AssetRow, asset_id) is not None:
                        report.existing.append(asset_id)
                        continue  # importing twice keeps one copy
                report.imported.append(
                    self.add_bytes(
                        blob,
                        entry.kind,
                        name=entry.name or entry.id,
                        asset_id=asset_id,
                        prompt=entry.prompt,
                        created_at=entry.created(),
                        tags=entry.tags_kept,
                        meta={"imported_from": "assets.json"},
                    )
                )
            except (binascii.Error, ValueError, EnfoadsError) as exc:
                reason = exc.message("en") if isinstance(exc, EnfoadsError) else type(exc).__name__
                label = scrub_text(raw.get("id", "")) if isinstance(raw, dict) else ""
                log.warning("seed import: skipped entry %d %r (%s)", position, label, reason)
                report.skipped.append(label[:80] or f"#{position + 1}")
                report.reasons.append(exc if isinstance(exc, EnfoadsError) else reason)
        log.info(
            "seed import: %d imported, %d skipped, %d already there",
            len(report.imported),
            len(report.skipped),
            len(report.existing),
        )
        return report


# One import request orders at most this much work (an assets.json of the seed's size); about
# 980,000 tiny entries fit under the body limit, each a row and a file.
MAX_IMPORT_ENTRIES = 500


def scrub_text(value: object) -> str:
    """``value`` as printable text: a lone surrogate or a control character becomes '?'."""
    text = str(value)
    return "".join(
        "?" if 0xD800 <= ord(c) <= 0xDFFF or (ord(c) < 32 and c not in "\t") else c for c in text
    )


class SeedEntry(BaseModel):
    """One entry of the seed's ``assets.json``, read strictly: a wrong type is this entry's
    problem, said as its reason, never the request's."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field("", max_length=200)
    url: str
    type: str = "image"
    name: str = Field("", max_length=255)
    prompt: str = Field("", max_length=4000)
    created_at: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)

    @classmethod
    def read(cls, raw: object) -> SeedEntry:
        from pydantic import ValidationError

        if not isinstance(raw, dict):
            raise InvalidInput("error.invalid", field="entry", reason=Reason("reason.not_object"))
        try:
            entry = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field_name = ".".join(str(p) for p in first.get("loc", ())) or "entry"
            raise InvalidInput(
                "error.invalid", field=field_name, reason=scrub_text(first["msg"])[:200]
            ) from None
        for text, name in ((entry.id, "id"), (entry.name, "name"), (entry.prompt, "prompt")):
            check_text(text, name)
        return entry

    @property
    def kind(self) -> str:
        return self.type if self.type in UPLOAD_KINDS else "image"

    @property
    def tags_kept(self) -> list[str]:
        return [t for t in self.tags if _TAG_RE.match(t)][:20]

    def blob(self, limit: int) -> bytes:
        match = re.match(r"^data:([\w/+.-]+);base64,(.*)$", self.url, re.S)
        if not match:
            raise InvalidInput("error.invalid", field="url", reason=Reason("reason.not_data_url"))
        blob = base64.b64decode(match.group(2), validate=True)
        media.check_upload_size(blob, self.id or "asset", limit)
        return blob

    def asset_id(self, blob: bytes) -> str:
        """The seed's id when it is one the vault accepts; else one from the content, so the
        same file imported again is found, not copied."""
        if _ID_RE.match(self.id):
            return self.id
        return f"{_PREFIX[self.kind]}_{hashlib.sha256(blob).hexdigest()[:16]}"

    def created(self) -> datetime | None:
        try:
            when = datetime.fromisoformat(str(self.created_at).replace("Z", "+00:00"))
            if when.tzinfo is not None:
                when = when.astimezone(timezone.utc).replace(tzinfo=None)
        except (ValueError, OverflowError, TypeError):
            return None
        return when


@dataclass
class ReindexReport:
    """What a re-index did: the assets back in the vault, the files skipped (and why), and the
    thumbnails it recognised and left."""

    recovered: list[Asset] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reasons: list[EnfoadsError] = field(default_factory=list)
    thumbnails: int = 0

    def to_dict(self, lang: str = "es") -> dict[str, Any]:
        return {
            "recovered": len(self.recovered),
            "skipped": len(self.skipped),
            "thumbnails": self.thumbnails,
            "skipped_reasons": [
                {"file": f, "reason": r.message(lang)}
                for f, r in zip(self.skipped[:100], self.reasons[:100])
            ],
            "assets": [a.to_dict() for a in self.recovered],
        }


@dataclass
class ImportReport:
    """What an ``assets.json`` import did: the new assets, the entries skipped (no inline data,
    malformed, refused) and those already in the vault, by the seed's id."""

    imported: list[Asset] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    reasons: list[Any] = field(default_factory=list)  # why each was skipped (an error or text)

    def to_dict(self, lang: str = "es") -> dict[str, Any]:
        said = [r.message(lang) if isinstance(r, EnfoadsError) else r for r in self.reasons]
        return {
            "imported": len(self.imported),
            "skipped": len(self.skipped),
            "already_there": len(self.existing),
            "skipped_ids": self.skipped[:100],
            "skipped_reasons": [
                {"id": i, "reason": r} for i, r in zip(self.skipped[:100], said[:100])
            ],
            "assets": [a.to_dict() for a in self.imported],
        }
