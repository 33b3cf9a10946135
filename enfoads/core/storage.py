"""Where asset bytes live when they are not (only) in the data dir: an S3-compatible bucket.

The asset store keeps its content-addressed layout (``ab/<sha256>.<ext>``, thumbnails beside
as ``<sha256>.jpg``) and its local folder; with a bucket, that folder is this host's cache of
the bucket (blobs never change under their name, so a cached copy is never stale) and the
bucket is the truth that every engine and worker shares. Nothing here knows about assets:
``Bucket`` moves named blobs.

Works with AWS S3, MinIO, Cloudflare R2, Google Cloud Storage's S3 mode and ``rclone serve
s3`` (the tests' server): path-style addressing, SigV4, nothing beyond GET, PUT, HEAD, DELETE,
LIST and presigned GETs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from enfoads.core.errors import StorageUnavailable

log = logging.getLogger(__name__)

# Below this a blob goes up in one PUT; above it, in parts of this size (streamed from disk).
PART_BYTES = 16 * 2**20


@dataclass(frozen=True)
class BucketConfig:
    """The ``ENFOADS_S3_*`` settings that name a bucket."""

    bucket: str
    endpoint_url: str = ""  # empty: AWS S3 itself
    prefix: str = ""  # one prefix per studio database: its objects are all under it
    region: str = "us-east-1"
    access_key_id: str = ""  # empty: boto3's own chain (AWS_* variables, instance roles)
    secret_access_key: str = ""
    public_url: str = ""  # where browsers reach the bucket, when not at endpoint_url

    @classmethod
    def from_settings(cls, settings: Any) -> BucketConfig | None:
        if settings.storage != "s3":
            return None
        return cls(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            prefix=settings.s3_prefix.strip("/"),
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            public_url=settings.s3_public_url,
        )


def _reason(exc: BaseException) -> str:
    """A short, path- and secret-free reason: the S3 error code, or the kind of failure."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code") or "")
        return code[:60] or "error"
    name = type(exc).__name__
    return {
        "EndpointConnectionError": "connection refused",
        "ConnectTimeoutError": "timeout",
        "ReadTimeoutError": "timeout",
        "NoCredentialsError": "no credentials",
    }.get(name, name)


def _missing(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code") or "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("404", "NoSuchKey", "NotFound") or status == 404


class Bucket:
    """Named blobs in an S3-compatible bucket, under the configured prefix."""

    def __init__(self, config: BucketConfig):
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # the studio's embedded install has no S3 client
            raise StorageUnavailable(config.bucket, "pip install 'enfoads[cluster]'") from None

        self.config = config
        options: dict[str, Any] = {
            "region_name": config.region or "us-east-1",
            "config": Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
            ),
        }
        if config.endpoint_url:
            options["endpoint_url"] = config.endpoint_url
        if config.access_key_id:
            options["aws_access_key_id"] = config.access_key_id
            options["aws_secret_access_key"] = config.secret_access_key
        self._client = boto3.client("s3", **options)
        public = dict(options, endpoint_url=config.public_url) if config.public_url else options
        self._signer = boto3.client("s3", **public) if config.public_url else self._client

    def __repr__(self) -> str:  # never the keys
        return f"Bucket({self.config.bucket!r}, prefix={self.config.prefix!r})"

    def key(self, name: str) -> str:
        return f"{self.config.prefix}/{name}" if self.config.prefix else name

    def _fail(self, exc: BaseException, doing: str) -> StorageUnavailable:
        log.warning("bucket %s: %s failed: %s", self.config.bucket, doing, exc)
        return StorageUnavailable(self.config.bucket, _reason(exc))

    def check(self) -> None:
        """The bucket answers with these credentials (at start-up: a wrong setting is named
        before the first job, not in it)."""
        try:
            self._client.head_bucket(Bucket=self.config.bucket)
        except Exception as exc:  # noqa: BLE001 - any failure: the bucket cannot be used
            if _missing(exc):  # HEAD has no body: its 404 is a bucket that is not there
                log.warning("bucket %s: not found", self.config.bucket)
                raise StorageUnavailable(self.config.bucket, "NoSuchBucket") from None
            raise self._fail(exc, "head bucket") from None

    def has(self, name: str) -> bool:
        try:
            self._client.head_object(Bucket=self.config.bucket, Key=self.key(name))
            return True
        except Exception as exc:  # noqa: BLE001
            if _missing(exc):
                return False
            raise self._fail(exc, f"head {name}") from None

    def upload(self, path: Path, name: str, mime: str) -> None:
        """The file at ``path`` under ``name``, streamed (multipart past ``PART_BYTES``)."""
        from boto3.s3.transfer import TransferConfig

        transfer = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES)
        try:
            self._client.upload_file(
                str(path),
                self.config.bucket,
                self.key(name),
                ExtraArgs={"ContentType": mime},
                Config=transfer,
            )
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"upload {name}") from None

    def download(self, name: str, dest: Path) -> None:
        """``name`` into ``dest``: streamed into a temp file beside it, then renamed, so a
        reader never sees half a file."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".dl-")
        os.close(fd)
        try:
            self._client.download_file(self.config.bucket, self.key(name), tmp)
            os.replace(tmp, dest)
        except Exception as exc:  # noqa: BLE001
            Path(tmp).unlink(missing_ok=True)
            raise self._fail(exc, f"download {name}") from None

    def delete(self, name: str) -> None:
        try:
            self._client.delete_object(Bucket=self.config.bucket, Key=self.key(name))
        except Exception as exc:  # noqa: BLE001
            if not _missing(exc):
                raise self._fail(exc, f"delete {name}") from None

    def names(self) -> Iterator[tuple[str, float]]:
        """Every blob's name under the prefix, with its last-modified time (epoch seconds)."""
        prefix = self.key("")
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, Prefix=prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"][len(prefix) :], item["LastModified"].timestamp()
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "list") from None

    def presigned(self, name: str, ttl_s: float, mime: str, filename: str | None) -> str:
        """A GET URL for ``name`` that works without credentials for ``ttl_s`` seconds, with
        the type (and, for a file, the download name) the studio's own link would give."""
        params = {
            "Bucket": self.config.bucket,
            "Key": self.key(name),
            "ResponseContentType": mime,
        }
        if filename:
            params["ResponseContentDisposition"] = f"inline; filename*=UTF-8''{quote(filename)}"
        return self._signer.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=max(1, int(ttl_s))
        )


def lock_blobs(session: Any, shas: list[str]) -> None:
    """Hold these files' names for the rest of ``session``'s transaction, against writers and
    deleters of the same bytes in any process on any host: PostgreSQL's transaction-scoped
    advisory locks (one per file, taken in order, so two callers cannot deadlock), or, on
    SQLite, the database's write lock (one writer at a time, which covers every name)."""
    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        for key in sorted({int(sha[:15], 16) for sha in shas if sha}):
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        session.execute(text("UPDATE assets SET id = id WHERE 0 = 1"))


def open_bucket(settings: Any) -> Bucket | None:
    """The bucket the settings name (``storage = "s3"``), checked; None for the data dir."""
    config = BucketConfig.from_settings(settings)
    if config is None:
        return None
    bucket = Bucket(config)
    bucket.check()
    return bucket
