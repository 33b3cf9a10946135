"""Who may call the server: the bearer token, when it is required, and signed media URLs.

Closed by default. A served studio always has a token. A loopback server whose token was
generated (nobody chose one) lets requests whose ``Host`` is local pass without it, so the
dashboard and local scripts keep working; every other request needs it: a non-local ``Host``
(a tunnel started by hand in front of 127.0.0.1, a DNS-rebinding page), any request once a
tunnel or public URL is up, and every request when the token was set or the server binds a
public address.

Media for ``<img src>`` (which cannot send a header) use short-lived signed URLs, never the
bearer token: a token in a URL ends up in logs, Referer headers and tunnel inspectors.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

MEDIA_VARIANTS = ("file", "thumbnail")


def host_is_local(host_header: str | None) -> bool:
    """``localhost``, ``127.x.y.z`` or ``[::1]``, with or without a port."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of UTF-8 bytes (a non-ASCII token is simply wrong: 401)."""
    if not expected or presented is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8", "replace"))


def _signer_class(clock: Callable[[], float]) -> type[TimestampSigner]:
    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return ClockSigner


_ASSET_PATH = re.compile(r"^/api/assets/([A-Za-z0-9_]{1,80})/(file|thumbnail)$")


@dataclass
class Access:
    """The server's access rule, read on every request (a tunnel closes it while it runs)."""

    token: str = ""
    attach_token: str = ""
    # A generated token on a loopback server: a request with a local Host needs no token.
    local_open: bool = False
    media_ttl_s: float = 600.0
    clock: Callable[[], float] = time.time
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def required(self, host_header: str | None) -> bool:
        if not self.token:
            return False
        return not (self.local_open and host_is_local(host_header))

    def allows(self, presented: str | None, host_header: str | None = None) -> bool:
        """The owner's token from anywhere; the attach token (the engine's own pages and
        kernels, all on this machine) only with a local ``Host``: never through a tunnel."""
        return check_token(self.token, presented) or self.attached(presented, host_header)

    def attached(self, presented: str | None, host_header: str | None) -> bool:
        return host_is_local(host_header) and check_token(self.attach_token, presented)

    def close_to_outside(self) -> None:
        """A tunnel or public URL is up: from now on every request needs the token."""
        self.local_open = False

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self.secret, salt="enfoads-media", signer=_signer_class(self.clock)
        )

    def media_url(self, asset_id: str, variant: str) -> str:
        """A path with a signature that opens this asset's file (or thumbnail) for
        ``media_ttl_s`` seconds, to anyone who has it, and nothing else."""
        sig = self._serializer().dumps([asset_id, variant])
        return f"/api/assets/{asset_id}/{variant}?sig={sig}"

    def sign_urls(self, content: Any) -> Any:
        """``content`` (a JSON-shaped answer or event) with every plain asset path in it
        (``/api/assets/<id>/file`` or ``/thumbnail``: a job's ``result_urls``, its images'
        ``url``, a video's ``video_url``) signed, so an ``<img src>`` opens it without the
        token. Every answer and event passes here: a new route or result field cannot forget."""
        if isinstance(content, str):
            match = _ASSET_PATH.match(content)
            return self.media_url(*match.groups()) if match else content
        if isinstance(content, dict):
            return {key: self.sign_urls(value) for key, value in content.items()}
        if isinstance(content, list | tuple):
            return [self.sign_urls(value) for value in content]
        return content

    def check_media(self, sig: str, asset_id: str, variant: str) -> Literal["ok", "expired", "bad"]:
        try:
            signed = self._serializer().loads(sig, max_age=self.media_ttl_s)
        except SignatureExpired:
            return "expired"
        except BadSignature:
            return "bad"
        return "ok" if signed == [asset_id, variant] else "bad"
