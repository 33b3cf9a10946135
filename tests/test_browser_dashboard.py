"""The dashboard a marketer meets, in a real Chromium at a laptop's and a phone's width.

A data dir is seeded the way months of use leave it (60 images named with accents, a video
with its voice-over and subtitles, a job interrupted by a restart), then ``enfoads studio``
serves it. The test reads every tab at 1280 px and 390 px (no button label cut, measured in the
DOM; icons drawn by the icon font), pages the vault to its 60th asset, searches without
accents, finds the video as one card, retries the interrupted job from Inicio and switches the
language without leaving Ajustes. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import png, video_with_files
from tests.test_browser import CHROMIUM, served_studio, studio_env

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("ENFOADS_TEST_ARTIFACTS", ROOT / "test-artifacts"))
TABS_ES = (
    "Inicio",
    "Creador de anuncios",
    "Variantes A/B",
    "Cambio de cara",
    "Estudio de vídeo",
    "BrandVault",
    "Publicar",
    "Ajustes",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)"),
]

# Buttons (and upload buttons) whose label does not fit their box, as the page draws them.
OVERFLOWING = """els => els.filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
                       .map(e => (e.textContent || e.title || '').trim())"""
# Font Awesome glyphs whose font face is not loaded (they would show as empty boxes).
UNDRAWN_ICONS = """els => {
  const loaded = new Set([...document.fonts].filter(f => f.status === 'loaded')
                         .map(f => f.family.replace(/["']/g, '')));
  return els.filter(e => e.offsetParent !== null).map(e => {
    const style = getComputedStyle(e, '::before');
    const family = style.fontFamily.split(',')[0].replace(/["']/g, '').trim();
    return (style.content === 'none' || !loaded.has(family)) ? e.className + ' ' + family : null;
  }).filter(Boolean);
}"""


# What a phone's width breaks: anything past the studio's right edge, a dropdown or text
# input squeezed under 24 px (Chromium drew them 14-17 px tall at 390 px), a label cut short
# (the face swap's licence sentence).
SQUEEZED = """() => {
  const app = document.querySelector('.enfoads-app');
  const right = Math.min(window.innerWidth, app.getBoundingClientRect().right) + 1;
  const found = [];
  for (const e of app.querySelectorAll('*')) {
    if (e.offsetParent === null) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0) continue;
    const text = (e.textContent || '').trim().slice(0, 50);
    if (r.right > right) found.push('past the edge: ' + e.tagName + ' ' + text);
    if ((e.tagName === 'SELECT' || (e.tagName === 'INPUT' && e.type === 'text')) && r.height < 24)
      found.push('squeezed: ' + e.tagName + ' ' + Math.round(r.height) + ' px');
    if ((e.tagName === 'LABEL' || e.classList.contains('widget-label'))
        && e.scrollWidth > e.clientWidth + 1) found.push('cut: ' + text);
  }
  return [...new Set(found)];
}"""


# Emoji and pictographs: drawn as empty boxes where no emoji font is installed.
EMOJI = re.compile("[\u2600-\u27bf\U0001f300-\U0001faff]")


def seed(env: dict[str, str]) -> dict[str, str]:
    """What the dashboard will find: 60 images, a video with its files, an interrupted job."""
    from enfoads.core.jobs import JobState
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    settings = load_settings(data_dir=env["ENFOADS_DATA_DIR"], device="cpu")
    with Studio(settings) as studio:  # not started: no engine, no queue
        for i in range(60):
            studio.assets.add_bytes(png((4 * i, 80, 160), (96, 64)), "image", name=f"Café {i:02d}")
        video, _parts = video_with_files(studio, "Anuncio de campaña")
        job = studio.jobs.store.create(
            "generate_image", {"prompt": "taza de café", "seed": 5, "placements": ["1:1"]}
        )
        # Its process died at 40 %: the engine that starts next marks it interrupted.
        studio.jobs.store.transition(
            job.id, [JobState.QUEUED], state=JobState.RUNNING, progress=40.0
        )
    return {"video": video.id, "job": job.id}


@pytest.fixture
def seeded_dashboard(tmp_path, tiny_sdxl):
    env = studio_env(tmp_path, tiny_sdxl)
    seeded = seed(env)
    with served_studio(env, tmp_path) as (url, log, _proc):
        yield url, log, env, seeded


def open_tab(page, title: str) -> None:
    page.locator(".enfoads-app .lm-TabBar-tab", has_text=title).first.click()
    page.wait_for_timeout(400)  # the panel's views render


def current_tab(page) -> str:
    return page.locator(".enfoads-app .lm-TabBar-tab.lm-mod-current").first.inner_text().strip()


def read_every_tab(page, width: int, titles=TABS_ES) -> dict[str, list[str]]:
    """Each tab's cut button labels and undrawn icons, with a screenshot per tab."""
    problems = {}
    for index, title in enumerate(titles):
        open_tab(page, title)
        buttons = page.locator(".enfoads-app button, .enfoads-app .widget-upload")
        cut = buttons.evaluate_all(OVERFLOWING)
        tabs = page.locator(".enfoads-app .lm-TabBar-tabLabel").evaluate_all(OVERFLOWING)
        icons = page.locator(".enfoads-app i.fa").evaluate_all(UNDRAWN_ICONS)
        emoji = EMOJI.findall(page.locator(".enfoads-app").first.inner_text())
        squeezed = page.evaluate(SQUEEZED)
        if cut or tabs or icons or emoji or squeezed:
            problems[title] = cut + tabs + icons + emoji + squeezed
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}-{index}.png"), full_page=True)
    return problems


def test_a_marketer_reads_finds_and_recovers_at_laptop_and_phone_width(seeded_dashboard):
    from playwright.sync_api import expect, sync_playwright

    url, log, env, seeded = seeded_dashboard
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(url, timeout=180_000, wait_until="domcontentloaded")
            page.locator(".enfoads-app .lm-TabBar-tab", has_text="Inicio").wait_for(timeout=180_000)
            # The studio only: the notebook's instructions and prints stay in Colab.
            body = page.locator("body").inner_text()
            assert "Ejecutar todas" not in body and "Datos / data" not in body
            assert "Desde código" not in body

            # Inicio: the interrupted job says why, and runs again from its retry button.
            row = page.locator(".enfoads-app .widget-hbox", has_text="Interrumpido").first
            row.wait_for(timeout=60_000)
            expect(row).to_contain_text("40%")
            row.get_by_role("button", name="Reintentar").click()
            page.get_by_text("trabajo lanzado de nuevo").wait_for(timeout=30_000)
            page.locator(".enfoads-app .widget-hbox", has_text="completado").first.wait_for(
                timeout=240_000
            )

            assert read_every_tab(page, 1280) == {}

            # BrandVault: the kit on top, paging to the 60th asset, accent-blind search, one
            # card for the video with its files.
            open_tab(page, "BrandVault")
            kit_y = page.get_by_text("Kit de marca").first.bounding_box()["y"]
            grid_y = page.locator(".enfoads-vault-grid:visible").bounding_box()["y"]
            assert kit_y < grid_y
            expect(page.get_by_text("62 recursos", exact=True)).to_be_visible()  # 61 + the retry's
            expect(page.get_by_text("Página 1 de 3")).to_be_visible()
            next_page = page.get_by_role("button", name="Siguiente")
            next_page.click()
            expect(page.get_by_text("Página 2 de 3")).to_be_visible()
            next_page.click()
            expect(page.get_by_text("Página 3 de 3")).to_be_visible()
            expect(page.locator(".enfoads-card", has_text="Café 00")).to_be_visible()  # the 60th
            page.screenshot(path=str(ARTIFACTS / "vault-page-3.png"), full_page=True)
            search = page.get_by_placeholder("nombre, prompt o etiqueta")
            search.fill("cafe 0")
            expect(page.get_by_text("10 recursos", exact=True)).to_be_visible()
            search.fill("CAMPANA")
            expect(page.get_by_text("1 recurso", exact=True)).to_be_visible()
            card = page.locator(".enfoads-card", has_text="Anuncio de campaña")
            expect(card).to_have_count(1)
            expect(card).to_contain_text("MP4 · WAV · SRT · VTT")
            card.get_by_role("button", name="Ver").click()
            # each file is sent to the page only when asked, named after the asset
            expect(page.locator("a[download]")).to_have_count(0)
            page.get_by_role("button", name="SRT").click()
            expect(page.locator("a[download*='Anuncio-de-campa'][download$='.srt']")).to_have_count(
                1
            )
            page.screenshot(path=str(ARTIFACTS / "vault-video-card.png"), full_page=True)

            # A language switch keeps Ajustes open and speaks English.
            open_tab(page, "Ajustes")
            page.get_by_role("button", name="English").click()
            page.locator(".enfoads-app .lm-TabBar-tab", has_text="Settings").wait_for(
                timeout=60_000
            )
            assert current_tab(page) == "Settings"
            page.get_by_role("button", name="Español").click()
            page.locator(".enfoads-app .lm-TabBar-tab", has_text="Ajustes").wait_for(timeout=60_000)
            assert current_tab(page) == "Ajustes"

            # A phone: the same page at 390 px.
            page.set_viewport_size({"width": 390, "height": 844})
            assert read_every_tab(page, 390) == {}
        finally:
            page.screenshot(path=str(ARTIFACTS / "dashboard-last.png"), full_page=True)
            browser.close()
    assert "Traceback" not in log.read_text()
