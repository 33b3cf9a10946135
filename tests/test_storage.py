"""Asset files in an S3-compatible bucket (issue #36): a real S3-protocol server (``rclone
serve s3``) and a real PostgreSQL, each "host" a studio with its own empty data dir. The
bucket is the only place files are shared: read through it, reference-counted deletes that
hold with several hosts writing, presigned links, and a bucket that fails named, with nothing
half-written."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from contextlib import closing

import httpx
import pytest
from PIL import Image

from enfoads.core.errors import InvalidInput, InvalidSetting, StorageUnavailable
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio

pytestmark = pytest.mark.postgres


def png_bytes(color=(200, 30, 30), size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def host(tmp_path, postgres, s3_server):
    """``host(name)``: the settings of one machine of a cluster: its own empty data dir, the
    shared PostgreSQL database and the shared bucket."""
    database = postgres.database()
    bucket = s3_server.settings(f"cluster-{tmp_path.name[-12:].replace('_', '-').lower()}x")

    def make(name: str, **extra):
        return load_settings(
            data_dir=tmp_path / name,
            device="cpu",
            language="es",
            server_port=0,
            database_url=database,
            **{**bucket, **extra},
        )

    make.bucket = bucket["s3_bucket"]
    return make


def objects(s3_server, bucket: str) -> set[str]:
    return set(s3_server.objects(bucket))


def names_used(studio: Studio) -> set[str]:
    """The bucket keys the database's assets use (files and thumbnails)."""
    used = set()
    for asset in studio.list_assets(limit=500).items:
        used.add(f"enfoads/{asset.sha256[:2]}/{asset.sha256}.{asset.ext}")
        thumb = studio.assets._thumb_sha(asset)
        if thumb:
            used.add(f"enfoads/{thumb[:2]}/{thumb}.jpg")
    return used


def test_two_hosts_share_files_only_through_the_bucket(host, s3_server):
    with Studio(host("a")) as a, closing(Studio(host("b"))) as b:  # b: a worker's host
        data = png_bytes()
        first = a.upload_asset(data, "logo.png")
        sha = hashlib.sha256(data).hexdigest()
        assert objects(s3_server, host.bucket) == names_used(a)
        assert f"enfoads/{sha[:2]}/{sha}.png" in objects(s3_server, host.bucket)
        # Host b has never seen the file: its first read fetches it into its own cache.
        path = b.asset_path(first.id)
        assert path.is_relative_to(b.settings.assets_dir) and path.read_bytes() == data
        assert Image.open(b.thumbnail_path(first.id)).format == "JPEG"
        # The same bytes from b: one object for both assets; it goes with the last of them.
        second = b.upload_asset(data, "copia.png")
        assert len(objects(s3_server, host.bucket)) == 2  # the file and its thumbnail
        a.delete_asset(first.id)
        assert objects(s3_server, host.bucket) == names_used(b) != set()
        b.delete_asset(second.id)
        assert objects(s3_server, host.bucket) == set()
        # A cached copy that no longer matches the bucket's object is not trusted.
        third = a.upload_asset(png_bytes((1, 2, 3)), "azul.png")
        key = f"enfoads/{third.sha256[:2]}/{third.sha256}.png"
        s3_server.client().put_object(Bucket=host.bucket, Key=key, Body=b"otra cosa")
        with pytest.raises(InvalidInput, match="no longer matches"):
            b.asset_path(third.id)
        assert not (b.settings.assets_dir / third.sha256[:2] / f"{third.sha256}.png").exists()


def test_a_delete_on_one_host_never_takes_the_object_another_host_is_storing(host, s3_server):
    """Host b deletes the last asset of some bytes while host a stores the same bytes again:
    a has seen the object and not yet committed its row (the gap widened here, as a slow
    database would). b's delete must wait for a's row and keep the object; one that counted
    the rows without waiting would delete it under a's new asset."""
    data = png_bytes((9, 99, 199))
    with Studio(host("a")) as a, closing(Studio(host("b"))) as b:
        old = b.upload_asset(data, "viejo.png")
        key = f"enfoads/{old.sha256[:2]}/{old.sha256}.png"
        inside, made = threading.Event(), []
        seen = a.assets.bucket.has

        def slow_has(name):
            found = seen(name)
            inside.set()
            time.sleep(0.5)
            return found

        a.assets.bucket.has = slow_has
        writer = threading.Thread(target=lambda: made.append(a.upload_asset(data, "nuevo.png")))
        writer.start()
        assert inside.wait(30)
        b.delete_asset(old.id)  # meanwhile: the old asset's row goes, then its object's count
        writer.join()
        assert key in objects(s3_server, host.bucket)
        assert objects(s3_server, host.bucket) == names_used(a)
        for cached in b.settings.assets_dir.glob("??/*"):
            cached.unlink()
        assert b.asset_bytes(made[0].id) == data  # readable from a host that never had it
        a.delete_asset(made[0].id)
        assert objects(s3_server, host.bucket) == set()  # no orphan object


def test_media_links_go_to_the_bucket_by_a_presigned_url_as_short_lived(host, s3_server):
    from enfoads.server.launch import start_in_thread

    data = png_bytes((10, 200, 10))
    with Studio(host("engine", media_url_ttl_s=120)).start() as studio:
        server = start_in_thread(studio, port=0, token="secreto-de-prueba")
        try:
            asset = studio.upload_asset(data, "verde.png")
            api = httpx.Client(base_url=server.url, timeout=30)
            info = api.get(
                f"/api/assets/{asset.id}", headers={"Authorization": "Bearer secreto-de-prueba"}
            ).json()
            for link, body, mime in (
                (info["url"], data, "image/png"),
                (info["thumbnail_url"], None, "image/jpeg"),
            ):
                moved = api.get(link)  # the studio's signed link, no token: to the bucket
                assert moved.status_code == 307, moved.text
                bucket_url = moved.headers["location"]
                assert bucket_url.startswith(s3_server.url) and "X-Amz-Expires=120" in bucket_url
                got = httpx.get(bucket_url)
                assert got.status_code == 200 and got.headers["content-type"] == mime
                assert body is None or got.content == body
                forged = bucket_url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
                assert httpx.get(forged).status_code == 403
            assert api.get(f"/api/assets/{asset.id}/file?sig=forged").status_code in (401, 403)
        finally:
            server.stop()
    # s3_presign off: the engine sends the file itself (a bucket browsers cannot reach).
    with Studio(host("engine2", s3_presign=False)).start() as studio:
        server = start_in_thread(studio, port=0, token="secreto-de-prueba")
        try:
            info = httpx.get(
                f"{server.url}/api/assets/{asset.id}",
                headers={"Authorization": "Bearer secreto-de-prueba"},
            ).json()
            got = httpx.get(server.url + info["url"])
            assert got.status_code == 200 and got.content == data
        finally:
            server.stop()


def test_a_bucket_that_fails_is_named_and_nothing_is_half_written(host, tmp_path, postgres):
    from fastapi.testclient import TestClient

    from enfoads.server.app import create_app
    from enfoads.testing.s3 import S3Server

    own = S3Server(tmp_path / "own-s3").start()
    bucket = own.settings("propio")
    settings = host("a", **bucket)
    studio = Studio(settings).start()
    try:
        kept = studio.upload_asset(png_bytes((5, 5, 5)), "antes.png")
        own.stop()  # the bucket's server goes away mid-session
        with TestClient(create_app(studio, token="")) as client:
            answer = client.post(
                "/api/assets", files={"file": ("logo.png", png_bytes(), "image/png")}
            )
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["error"] == "storage_unavailable" and "«propio»" in body["message"]
        for secret in (own.url, own.access_key, own.secret_key, str(tmp_path), "Traceback"):
            assert secret not in answer.text
        with pytest.raises(StorageUnavailable) as caught:
            studio.upload_asset(png_bytes((1, 1, 1)), "otro.png")
        assert "no se guardó ni cambió nada" in caught.value.message("es")
        assert [a.id for a in studio.list_assets().items] == [kept.id]  # nothing half-added
        cached = {p.name for p in settings.assets_dir.glob("??/*")}
        assert cached == {f"{kept.sha256}.png", f"{studio.assets._thumb_sha(kept)}.jpg"}
        own.start()  # back on the same port: the studio works again
        assert studio.upload_asset(png_bytes((1, 1, 1)), "otro.png").kind == "image"
    finally:
        studio.close()
        own.stop()
    # A bucket that is not there stops the studio at start, named (not in the first job).
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        Studio(host("b", s3_bucket="no-existe"))
    with pytest.raises(InvalidSetting, match="ENFOADS_S3_BUCKET"):
        load_settings(data_dir=tmp_path / "c", storage="s3")


def test_the_sweep_deletes_objects_no_asset_uses(host, s3_server):
    with Studio(host("a")) as studio:
        asset = studio.upload_asset(png_bytes(), "logo.png")
        client = s3_server.client()
        orphan = "enfoads/ab/" + "ab" + "0" * 62 + ".png"  # a delete cut off before its object
        client.put_object(Bucket=host.bucket, Key=orphan, Body=b"resto")
        assert studio.assets.sweep(min_age_s=600)["objects"] == 0  # young: maybe a write
        assert orphan in objects(s3_server, host.bucket)
        assert studio.assets.sweep(min_age_s=0)["objects"] == 1
        assert objects(s3_server, host.bucket) == names_used(studio)
        assert studio.asset_bytes(asset.id) == png_bytes()
