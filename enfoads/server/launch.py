"""Starting the server: in the foreground (``enfoads serve``) or in a background thread from
the notebook, sharing the notebook's Studio so both see the same jobs and assets."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from enfoads.core.studio import Studio
from enfoads.server.access import Access, host_is_local

log = logging.getLogger(__name__)


def choose_token(host: str, token: str, exposed: bool = False) -> tuple[str, bool]:
    """``(token, local_open)``: a served studio always has a token, the one given or a new
    one. Only a generated token on a loopback server (not ``exposed`` through a tunnel or
    public URL) is local-open: requests whose Host is local pass without it."""
    if token:
        return token, False
    return secrets.token_urlsafe(24), not exposed and host_is_local(host)


@dataclass
class ServerHandle:
    url: str
    token: str
    server: Any
    thread: threading.Thread | None = None
    access: Access | None = None
    tunnel: Any = None

    def open_tunnel(self, provider: str = "auto", **options: Any) -> Any:
        """Put this server on a public URL (``enfoads.server.tunnel``); from then on every
        request needs the token, whatever its Host."""
        from enfoads.server.tunnel import start_tunnel

        if self.access is not None:
            self.access.close_to_outside()
        port = int(self.url.rsplit(":", 1)[1])
        self.tunnel = start_tunnel(port, provider, **options)
        return self.tunnel

    def stop(self, timeout: float = 10.0) -> None:
        if self.tunnel is not None:
            self.tunnel.close()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)


def local_url(host: str, port: int) -> str:
    """The URL to reach a server bound to ``host`` from this machine."""
    return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"


def _build(studio: Studio, host: str, port: int, token: str, local_open: bool) -> Any:
    import uvicorn

    from enfoads.server.app import create_app

    trusted = studio.settings.trusted_proxies.strip()
    app = create_app(studio, token=token, local_open=local_open)
    # Forwarded headers only from a configured proxy: otherwise any client could claim any
    # address (and a fresh rate-limit bucket) with X-Forwarded-For.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    server = uvicorn.Server(config)
    server.enfoads_access = app.api.state.access
    return server


def start_in_thread(
    studio: Studio,
    *,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    exposed: bool = False,
    timeout: float = 30.0,
) -> ServerHandle:
    """Serve ``studio`` from a daemon thread (the notebook keeps running); returns once it
    listens. ``port=0`` picks a free port. ``exposed``: it will sit behind a tunnel or a
    public URL, so every request needs the token from the start."""
    s = studio.settings
    host = host or s.server_host
    token, local_open = choose_token(host, s.server_token if token is None else token, exposed)
    server = _build(studio, host, s.server_port if port is None else port, token, local_open)
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
    return ServerHandle(url, token, server, thread, server.enfoads_access)


def serve_forever(
    studio: Studio,
    *,
    host: str,
    port: int,
    token: str,
    public_url: str | None = None,
    tunnel: str | None = None,
    ngrok_authtoken: str = "",
    parent: int | None = None,
) -> None:
    """``enfoads serve``: the engine's API in the foreground; its address is recorded for the
    surfaces that attach to it. ``tunnel`` (``cloudflare``, ``ngrok`` or ``auto``) also opens a
    public URL. Ends on Ctrl-C or SIGTERM, or when process ``parent`` is gone (the engine that
    ``enfoads studio`` started never outlives it, even after a kill -9)."""
    import os
    import signal

    from enfoads.server.tunnel import policy_notice

    exposed = bool(public_url or tunnel)
    handle = start_in_thread(studio, host=host, port=port, token=token, exposed=exposed)
    studio.publish_api(
        local_url(
            "127.0.0.1" if host in ("0.0.0.0", "::") else host, int(handle.url.rsplit(":", 1)[1])
        )
    )
    if tunnel:
        print(policy_notice(studio.settings.language), flush=True)
        try:
            public_url = handle.open_tunnel(
                tunnel,
                cloudflared=studio.settings.cloudflared_path,
                ngrok_authtoken=ngrok_authtoken,
            ).url
        except Exception:
            handle.stop()
            raise
    print(f"Enfoads Studio API: {public_url or handle.url}", flush=True)
    print(f"Token (Authorization: Bearer …): {handle.token}", flush=True)
    if handle.access is not None and handle.access.local_open:
        print("  (needed from anywhere but this machine)", flush=True)

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


def colab_docs_iframe(port: int, height: int = 600) -> None:
    """Show the API's ``/docs`` inside the notebook through Colab's kernel-port proxy. The
    proxy is only good for this: it carries neither POST nor WebSockets for an outside client
    and needs the notebook user's login; the React client uses a tunnel."""
    from google.colab import output  # type: ignore[import-not-found]

    output.serve_kernel_port_as_iframe(port, path="/docs", height=height)
