"""Starting the server: in the foreground (``enfoads serve``) or in a background thread from
the notebook, sharing the notebook's Studio so both see the same jobs and assets."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from enfoads.core.studio import Studio

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_token(host: str, token: str, exposed: bool = False) -> str:
    """The token to require: the one given, or a new one once the server is reachable from
    outside (a non-loopback host, or behind the Colab proxy or ngrok: ``exposed``)."""
    if token:
        return token
    if exposed or not is_loopback(host):
        return secrets.token_urlsafe(24)
    return ""


@dataclass
class ServerHandle:
    url: str
    token: str
    server: Any
    thread: threading.Thread | None = None

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)


def local_url(host: str, port: int) -> str:
    """The URL to reach a server bound to ``host`` from this machine."""
    return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"


def _build(studio: Studio, host: str, port: int, token: str) -> Any:
    import uvicorn

    from enfoads.server.app import create_app

    trusted = studio.settings.trusted_proxies.strip()
    # Forwarded headers only from a configured proxy: otherwise any client could claim any
    # address (and a fresh rate-limit bucket) with X-Forwarded-For.
    config = uvicorn.Config(create_app(studio, token=token), host=host, port=port,
                            log_level="warning", lifespan="on", proxy_headers=bool(trusted),
                            forwarded_allow_ips=trusted or None)  # fmt: skip
    return uvicorn.Server(config)


def start_in_thread(studio: Studio, *, host: str | None = None, port: int | None = None,
                    token: str | None = None, exposed: bool = False,
                    timeout: float = 30.0) -> ServerHandle:  # fmt: skip
    """Serve ``studio`` from a daemon thread (the notebook keeps running); returns once it
    listens. ``port=0`` picks a free port."""
    s = studio.settings
    host = host or s.server_host
    token = choose_token(host, s.server_token if token is None else token, exposed)
    server = _build(studio, host, s.server_port if port is None else port, token)
    thread = threading.Thread(target=server.run, name="enfoads-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive():
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the server did not start in time")
        time.sleep(0.05)  # uvicorn offers no start event to wait on
    if not server.started:
        raise RuntimeError("the server could not start (is the port in use?)")
    url = local_url(host, server.servers[0].sockets[0].getsockname()[1])  # port 0: the real one
    log.info("Enfoads Studio API on %s", url)
    return ServerHandle(url, token, server, thread)


def serve_forever(studio: Studio, *, host: str, port: int, token: str,
                  public_url: str | None = None, parent: int | None = None) -> None:  # fmt: skip
    """``enfoads serve``: the engine's API in the foreground; its address is recorded for the
    surfaces that attach to it. Ends on Ctrl-C or SIGTERM, or when process ``parent`` is gone
    (the engine that ``enfoads studio`` started never outlives it, even after a kill -9)."""
    import os

    import signal

    token = choose_token(host, token, exposed=bool(public_url))
    handle = start_in_thread(studio, host=host, port=port, token=token)
    studio.publish_api(local_url("127.0.0.1" if host in ("0.0.0.0", "::") else host,
                                 int(handle.url.rsplit(":", 1)[1])))  # fmt: skip
    print(f"Enfoads Studio API: {public_url or handle.url}", flush=True)
    if token:
        print(f"Token (Authorization: Bearer …): {token}", flush=True)

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while handle.thread is not None and handle.thread.is_alive():
            handle.thread.join(0.5)
            if parent is not None and os.getppid() != parent:
                log.info("the process that started this engine is gone: stopping")
                break
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()


def public_url(port: int) -> str | None:
    """A URL reachable from outside this machine: Colab's kernel-port proxy when in Colab,
    else an ngrok tunnel when ``NGROK_AUTHTOKEN`` is set and pyngrok is installed."""
    import os
    import sys

    if "google.colab" in sys.modules:
        from google.colab.output import eval_js  # type: ignore[import-not-found]

        return str(eval_js(f"google.colab.kernel.proxyPort({port})")).rstrip("/")
    if os.environ.get("NGROK_AUTHTOKEN"):
        try:
            from pyngrok import ngrok  # type: ignore[import-not-found]
        except ImportError:
            log.warning("NGROK_AUTHTOKEN is set but pyngrok is not installed")
            return None
        ngrok.set_auth_token(os.environ["NGROK_AUTHTOKEN"])
        return str(ngrok.connect(port, "http").public_url)
    return None
