"""Closed by default: who may call a served studio, signed media URLs, and the tunnel."""

from __future__ import annotations

import io
import stat
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from enfoads.core.studio import Studio
from enfoads.server.access import Access, host_is_local
from enfoads.server.app import create_app
from enfoads.server.launch import start_in_thread
from enfoads.server.tunnel import TunnelError, start_tunnel


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def local_open_app(settings):
    """The app as `enfoads serve` builds it on 127.0.0.1 with no token chosen."""
    with Studio(settings) as studio:
        studio.start()
        app = create_app(studio, token="generated-token", local_open=True)
        with TestClient(app, base_url="http://127.0.0.1:5000") as client:
            yield studio, app, client


def test_local_hosts():
    for host in (
        "localhost",
        "localhost:5000",
        "127.0.0.1",
        "127.0.0.1:80",
        "[::1]:5000",
        "127.9.9.9",
        "app.localhost",
    ):
        assert host_is_local(host), host
    for host in (
        "",
        None,
        "example.com",
        "abc.trycloudflare.com:443",
        "10.0.0.5",
        "192.168.1.2:5000",
        "localhost.evil.com",
        "[2001:db8::1]:80",
    ):
        assert not host_is_local(host), host


def test_a_proxy_or_another_pages_request_needs_the_token_even_with_a_local_host(
    local_open_app,
):
    """A local Host behind a proxy (X-Forwarded-*) is not a local caller, and a page of
    another origin (a dev server on localhost:3000, whose origin CORS allows) must send the
    token like any client: neither reads nor writes the vault without it. The server's own
    page through a tunnel (https outside, http inside) is its own origin, not cross-site."""
    _, _, c = local_open_app
    token = {"Authorization": "Bearer generated-token"}
    for extra in (
        {"X-Forwarded-For": "203.0.113.9"},
        {"X-Forwarded-Host": "127.0.0.1:5000"},
        {"Forwarded": "for=203.0.113.9"},
        {"Origin": "http://localhost:3000"},
    ):
        r = c.get("/api/assets", headers=extra)
        assert r.status_code == 401, extra
        assert c.get("/api/assets", headers={**extra, **token}).status_code == 200, extra
    r = c.post(
        "/api/assets",
        json={"data": "aGk=", "name": "x.png"},
        headers={"Origin": "http://localhost:3000"},
    )
    assert r.status_code == 401
    tunnel = {"Host": "abc.trycloudflare.com", "Origin": "https://abc.trycloudflare.com"}
    r = c.post("/magic-prompt", json={"prompt": "zapatos"}, headers={**tunnel, **token})
    assert r.status_code == 200, r.text  # /docs' own "Try it out" through the tunnel


def test_a_non_local_host_needs_the_token(local_open_app):
    _, _, c = local_open_app
    assert c.get("/api/assets").status_code == 200  # the user's own machine
    # a hand-started tunnel or a DNS-rebinding page: the Host is not local
    for host in ("abc.trycloudflare.com", "evil.example:5000", "10.0.0.5:5000"):
        r = c.get("/api/assets", headers={"Host": host})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", host
        ok = c.get("/api/assets", headers={"Host": host, "Authorization": "Bearer generated-token"})
        assert ok.status_code == 200
    assert c.get("/", headers={"Host": "evil.example"}).status_code == 200  # health stays open


def test_a_tunnel_closes_the_server_for_every_host(local_open_app):
    _, app, c = local_open_app
    app.api.state.access.close_to_outside()
    assert c.get("/api/assets").status_code == 401
    assert (
        c.get("/api/assets", headers={"Authorization": "Bearer generated-token"}).status_code == 200
    )


def test_cross_site_multipart_post_on_loopback_is_refused(local_open_app):
    studio, _, c = local_open_app
    before = studio.list_assets().total
    r = c.post(
        "/api/assets",
        files={"file": ("x.png", png(), "image/png")},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and r.json()["error"] == "cross_site"
    r = c.post(
        "/api/assets",
        files={"file": ("x.png", png(), "image/png")},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403
    assert studio.list_assets().total == before


def test_signed_media_urls_work_until_they_expire(settings):
    now = [1_000_000.0]
    with Studio(settings) as studio:
        studio.start()
        app = create_app(studio, token="t0ken")
        access: Access = app.api.state.access
        access.clock = lambda: now[0]
        with TestClient(app) as c:
            auth = {"Authorization": "Bearer t0ken"}
            other = c.post(
                "/api/assets", files={"file": ("b.png", png(), "image/png")}, headers=auth
            ).json()
            asset = c.post(
                "/api/assets", files={"file": ("a.png", png(), "image/png")}, headers=auth
            ).json()
            url, thumb = asset["url"], asset["thumbnail_url"]
            assert "sig=" in url and "t0ken" not in url and "sig=" in thumb
            assert c.get(f"/api/assets/{asset['id']}/file").status_code == 401  # unsigned
            r = c.get(url)  # no header: an <img src>
            assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
            assert c.get(thumb).headers["content-type"] == "image/jpeg"
            # a signature opens its own asset only, and only for reading
            stolen = url.replace(asset["id"], other["id"], 1)
            r = c.get(stolen)
            assert r.status_code == 403 and r.json()["error"] == "media_link_bad"
            assert c.delete(url).status_code == 401
            assert c.get(url.replace("/file?", "?")).status_code == 401  # not the asset's JSON
            listed = c.get("/api/assets", headers=auth).json()["items"]
            assert all("sig=" in a["url"] for a in listed)
            now[0] += settings.media_url_ttl_s - 5
            assert c.get(url).status_code == 200
            now[0] += 10
            r = c.get(url, headers={"Accept-Language": "es"})
            assert r.status_code == 403 and r.json()["error"] == "media_link_expired"
            fresh = c.get(f"/api/assets/{asset['id']}", headers=auth).json()["url"]
            assert c.get(fresh).status_code == 200


def test_a_served_studio_on_loopback_has_a_token_for_outsiders(studio):
    studio.start()
    handle = start_in_thread(studio, host="127.0.0.1", port=0, token="")
    try:
        assert len(handle.token) >= 24 and handle.access.local_open
        port = handle.url.rsplit(":", 1)[1]
        assert httpx.get(handle.url + "/api/jobs").status_code == 200
        r = httpx.get(handle.url + "/api/jobs", headers={"Host": f"studio.example:{port}"})
        assert r.status_code == 401
    finally:
        handle.stop()


def fake_cloudflared(tmp_path, body: str):
    path = tmp_path / "cloudflared"
    path.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


CLOUDFLARED_LOG = """
args = sys.argv[1:]
assert args[:2] == ["tunnel", "--no-autoupdate"] and args[2] == "--url", args
print("INF Requesting new quick Tunnel on trycloudflare.com...", file=sys.stderr, flush=True)
print("INF +------------------------------------------------------------+", file=sys.stderr)
print("INF |  https://kind-words-lake-owl.trycloudflare.com               |", file=sys.stderr, flush=True)
for i in range(20000):  # keeps logging: an unread pipe would stall it
    print("INF Registered tunnel connection connIndex=%d" % i, file=sys.stderr, flush=True)
time.sleep(60)
"""


def test_cloudflare_quick_tunnel_with_a_fake_binary(studio, tmp_path):
    binary = fake_cloudflared(tmp_path, CLOUDFLARED_LOG)
    studio.start()
    handle = start_in_thread(studio, host="127.0.0.1", port=0, token="")
    try:
        assert httpx.get(handle.url + "/api/jobs").status_code == 200
        tunnel = handle.open_tunnel("auto", cloudflared=binary)
        assert tunnel.url == "https://kind-words-lake-owl.trycloudflare.com"
        assert tunnel.provider == "cloudflare" and tunnel.alive()
        # from now on every request needs the token, even from this machine
        assert httpx.get(handle.url + "/api/jobs").status_code == 401
        ok = httpx.get(
            handle.url + "/api/jobs", headers={"Authorization": f"Bearer {handle.token}"}
        )
        assert ok.status_code == 200
        time.sleep(0.5)
        assert tunnel.alive()  # still running while it logs (its pipe is drained)
    finally:
        handle.stop()
    assert not tunnel.alive()


def test_a_tunnel_that_gives_no_url_fails_clearly(tmp_path):
    binary = fake_cloudflared(
        tmp_path, 'print("ERR failed to request quick Tunnel", file=sys.stderr)'
    )
    with pytest.raises(TunnelError) as err:
        start_tunnel(5000, "cloudflare", cloudflared=binary, timeout_s=10)
    assert "cloudflared" in err.value.message("en") and "túnel" in err.value.message("es")
    with pytest.raises(TunnelError):
        start_tunnel(5000, "cloudflare", cloudflared=str(tmp_path / "missing"))
    with pytest.raises(TunnelError) as err:
        start_tunnel(5000, "ngrok")
    assert "NGROK_AUTHTOKEN" in err.value.message("en")


def test_enfoads_serve_tunnel_prints_the_public_url_and_token(tmp_path):
    """``enfoads serve --tunnel`` with a (fake) cloudflared: the policy notice, the public URL,
    the token; the API then needs the token from this machine too. Without cloudflared: the
    reason, no traceback."""
    import os
    import re
    import signal
    import subprocess

    env = {
        **os.environ,
        "ENFOADS_DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
        "ENFOADS_LANGUAGE": "en",
        "ENFOADS_CLOUDFLARED_PATH": fake_cloudflared(tmp_path, CLOUDFLARED_LOG),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "enfoads.cli", "serve", "--port", "0", "--tunnel"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import threading

    err: list[str] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()
    try:
        lines = []
        while not any(line.startswith("Token") for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(err)
            lines.append(line.strip())
        text = "\n".join(lines)
        assert "Colab's rules forbid" in text
        assert "Enfoads Studio API: https://kind-words-lake-owl.trycloudflare.com" in text
        token = lines[-1].rsplit(": ", 1)[1]
        local = next(
            m.group(0) for line in err if (m := re.search(r"http://127\.0\.0\.1:\d+", line))
        )
        assert httpx.get(local + "/api/jobs").status_code == 401  # closed: a tunnel is up
        assert (
            httpx.get(local + "/api/jobs", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    env["ENFOADS_CLOUDFLARED_PATH"] = str(tmp_path / "missing")
    out = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "serve", "--port", "0", "--tunnel"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "cloudflared" in out.stderr
