"""A public URL for the React client, without an account: a Cloudflare quick tunnel.

Colab's kernel-port proxy cannot carry the React client (POST answers 500, WebSockets do not
pass, and its URL needs the notebook user's Google login), so the studio opens a tunnel of
its own, only when asked:

- ``cloudflare`` (the default): ``cloudflared tunnel --url http://127.0.0.1:PORT`` gives a
  ``https://….trycloudflare.com`` URL, no account. The binary is the ``cloudflared_path``
  given, else ``cloudflared`` on the PATH, else the one ``pycloudflared`` downloads.
- ``ngrok``: when an ngrok auth token is given (``NGROK_AUTHTOKEN``), through ``pyngrok``.
  ngrok shows a warning page to browsers; the TypeScript client sends
  ``ngrok-skip-browser-warning`` to pass it.

Whoever opens a tunnel must close the server to the outside first (``Access.close_to_outside``,
done by ``ServerHandle.open_tunnel``): from then on every request needs the token.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from enfoads.core.errors import EnfoadsError
from enfoads.core.i18n import t

log = logging.getLogger(__name__)

Provider = Literal["auto", "cloudflare", "ngrok"]
QUICK_TUNNEL_URL = re.compile(r"https://[a-z0-9-]+\.trycloudflare\.com")


class TunnelError(EnfoadsError):
    status = 502


def policy_notice(lang: str) -> str:
    """Colab's FAQ: free runtimes are for interactive compute; a web service unrelated to it
    can get the session disconnected. Shown wherever a tunnel is offered."""
    return t("notice.tunnel_policy", lang)


@dataclass
class Tunnel:
    """A running tunnel: its public URL and how to close it."""

    url: str
    provider: str
    process: subprocess.Popen[str] | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    _ngrok: Any = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self._ngrok is not None

    def close(self) -> None:
        from enfoads.core.media import stop_process

        stop_process(self.process, 5)
        if self._ngrok is not None:
            from pyngrok import ngrok  # type: ignore[import-not-found]

            ngrok.disconnect(self._ngrok.public_url)
            self._ngrok = None


def find_cloudflared(path: str = "") -> str:
    """The cloudflared binary: the one given, on the PATH, or pycloudflared's download."""
    if path:
        return path
    found = shutil.which("cloudflared")
    if found:
        return found
    try:
        from pycloudflared.util import download, get_info  # type: ignore[import-not-found]
    except ImportError as exc:
        raise TunnelError("error.tunnel_no_cloudflared") from exc
    info = get_info()
    from pathlib import Path

    if not Path(info.executable).exists():
        log.info("downloading cloudflared (once) from Cloudflare's releases")
        download(info)
    return info.executable


def start_cloudflare(port: int, *, binary: str = "", timeout_s: float = 45.0) -> Tunnel:
    """Start a quick tunnel to 127.0.0.1:``port``; returns once cloudflared prints its URL."""
    exe = find_cloudflared(binary)
    try:
        process = subprocess.Popen(  # a fixed argument list, no shell
            [exe, "tunnel", "--no-autoupdate", "--url", f"http://127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as exc:
        raise TunnelError("error.tunnel_no_cloudflared") from exc
    tunnel = Tunnel("", "cloudflare", process)
    found = threading.Event()

    def drain() -> None:
        # Read cloudflared's log for as long as it runs: an unread pipe fills and stalls it.
        assert process.stderr is not None
        for line in process.stderr:
            tunnel.output.append(line.rstrip())
            match = QUICK_TUNNEL_URL.search(line)
            if match and not tunnel.url:
                tunnel.url = match.group(0)
                found.set()
        found.set()  # it ended

    threading.Thread(target=drain, name="enfoads-cloudflared", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not found.wait(0.1):
        if time.monotonic() > deadline:
            break
    if not tunnel.url:
        tunnel.close()
        log.warning("cloudflared gave no URL; its last lines: %s", list(tunnel.output)[-5:])
        raise TunnelError("error.tunnel_failed")
    log.info("quick tunnel up: %s", tunnel.url)
    return tunnel


def start_ngrok(port: int, authtoken: str) -> Tunnel:
    try:
        from pyngrok import ngrok  # type: ignore[import-not-found]
    except ImportError as exc:
        raise TunnelError("error.tunnel_no_pyngrok") from exc
    ngrok.set_auth_token(authtoken)
    listener = ngrok.connect(port, "http")
    return Tunnel(str(listener.public_url), "ngrok", _ngrok=listener)


def start_tunnel(
    port: int,
    provider: Provider = "auto",
    *,
    cloudflared: str = "",
    ngrok_authtoken: str = "",
    timeout_s: float = 45.0,
) -> Tunnel:
    """``auto``: ngrok when an auth token is given, else a Cloudflare quick tunnel."""
    if provider == "ngrok" or (provider == "auto" and ngrok_authtoken):
        if not ngrok_authtoken:
            raise TunnelError("error.tunnel_no_ngrok_token")
        return start_ngrok(port, ngrok_authtoken)
    return start_cloudflare(port, binary=cloudflared, timeout_s=timeout_s)
