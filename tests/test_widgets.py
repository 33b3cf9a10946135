"""Widget tests: build the panels over a Studio with tiny/offline models, click, assert traits."""

import io
from pathlib import Path

import ipywidgets as w
import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from PIL import Image

from enfoads.core.studio import Studio
from enfoads.testing.faces import astronaut_rgb
from enfoads.widgets.app import TABS, StudioApp
from enfoads.widgets.compat import tab_titles

TIMEOUT = 300


@pytest.fixture
def app(media_settings, tiny_sdxl):
    studio = Studio(
        media_settings(
            language="es",
            image_base_model=str(tiny_sdxl["base"]),
            image_unet_model=str(tiny_sdxl["unet"]),
            image_vae_model=str(tiny_sdxl["vae"]),
            faceswap_licence_accepted=False,  # as a new user's studio starts
        )
    ).start()
    yield StudioApp(studio)
    studio.close()


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_tabs_are_spanish_first_and_the_language_switch_rebuilds_them(app):
    assert tab_titles(app) == (
        "Inicio",
        "Creador de anuncios",
        "Variantes A/B",
        "Cambio de cara",
        "Estudio de vídeo",
        "BrandVault",
        "Publicar",
        "Ajustes",
    )
    assert app.creator.generate.description == "Generar"
    app.settings.language.value = "en"
    assert tab_titles(app)[1:5] == ("Ad Creator", "A/B variants", "Face Swap", "Video Studio")
    assert app.creator.generate.description == "Generate"
    assert app.studio.language == "en"
    saved = (app.studio.settings.data_dir / "settings.json").read_text()
    assert '"language": "en"' in saved


def test_home_shows_budgets_jobs_and_missing_models(app):
    home = app.home
    assert home.ram.max == pytest.approx(app.studio.settings.ram_budget_gb * 1024**3)
    assert "GB" in home.gpu_text.value
    # the models' share of the budget, and the machine's real RAM use beside it
    assert home.ram_text.value.startswith("modelos ") and " · máquina " in home.ram_text.value
    # the tiny SDXL is on disk, the face models too; whisper tiny.en is a local folder, and
    # the default voice (Joe here) ships in a package
    assert home.missing.children == ()
    # The preselected voice not on disk is a missing model (a render with it would fail),
    # named as the Video Studio's dropdown names it, with its own download button.
    app.studio.settings = app.studio.settings.model_copy(
        update={"voice_default": "es_MX-claude-high"}
    )
    home.refresh_missing()
    text = " ".join(c.value for c in home.missing.children if isinstance(c, w.HTML))
    rows = [c for c in home.missing.children if isinstance(c, w.HBox)]
    assert [r.children[1].value for r in rows] == ["Voz: Claude · México · calidad alta"]
    assert "Faltan modelos" in text and "voice:" not in text
    assert rows[0].children[0].description == "Descargar"


def test_magic_prompt_fills_the_editable_prompt(app):
    creator = app.creator
    creator.prompt.value = "zapatillas rojas en la playa"
    creator.placements.value = ("9:16",)
    creator.magic.click()
    # translated (by the random-weight stand-in, hence its words) and framed for 9:16
    assert not creator.enhanced.value.startswith("zapatillas rojas en la playa")
    assert "vertical composition" in creator.enhanced.value
    assert "seamless background" not in creator.enhanced.value  # "en la playa" names the place
    # kept as the magic prompt made it: the job composes each placement's own
    captured = {}

    def submit(**params):
        captured.clear()
        captured.update(params)
        raise RuntimeError("not queued in this test")

    creator.studio.generate_images = submit
    creator.start()
    assert captured.get("magic_prompt") is True and "enhanced_prompt" not in captured
    creator.enhanced.value += ", in the rain"  # edited: the user's own text goes as it is
    creator.start()
    assert captured["enhanced_prompt"].endswith(", in the rain") and "magic_prompt" not in captured


def test_generate_shows_progress_gallery_vault_and_home(app):
    creator, vault = app.creator, app.vault
    assert vault.count.value == "0 recursos"
    creator.prompt.value = "botella de aceite de oliva"
    assert (
        "9:16 · Stories, Reels, TikTok",
        "9:16",
    ) in creator.placements.options  # named placements
    creator.placements.value = ("1:1", "16:9")
    assert not creator.repeat.value and "-1" not in creator.seed.description  # no jargon
    creator.seed.value = 21  # typing a variation number asks to repeat it
    assert creator.repeat.value
    creator.generate.click()
    job_id = creator.progress.job_id
    assert job_id and creator.generate.disabled and not creator.progress.cancel.disabled
    job = app.studio.wait_job(job_id, TIMEOUT)
    assert job.state.value == "completed"
    assert creator.progress.bar.value == 100 and creator.progress.bar.bar_style == "success"
    assert creator.progress.stage.text == "Completado"
    assert len(creator.gallery.children) == 2 and not creator.generate.disabled
    labels = [card.children[1].value for card in creator.gallery.children]
    assert labels == ["1:1 · 21", "16:9 · 21"]
    assert "Listo: 2 imágenes (variación 21)." in creator.message.value
    assert vault.count.value == "2 recursos" and len(vault.grid.children) == 2
    assert len(app.home.recent.children) == 2
    assert "<b>Imágenes</b>" in app.home.jobs.children[0].children[0].value
    assert "completado" in app.home.jobs.children[0].children[0].value
    row = app.home.jobs.children[0].children[0].value  # which job, and when: rows tell apart
    assert "«botella de aceite de oliva»" in row and f"{job.created_at:%H:%M}" in row
    # gallery actions: keep (a tag), use in a video (a scene), use as avatar (needs a face)
    card = creator.gallery.children[0]
    keep, avatar = card.children[2].children
    keep.click()
    assert "guardado" in app.studio.get_asset(job.result_asset_ids[0]).tags
    avatar.click()
    assert "No se encontró ninguna cara" in creator.message.value
    card.children[3].children[0].click()
    assert len(app.video.scenes.children) == 1 and app.selected_index == TABS.index("video")
    downloads = card.children[4]
    assert not any(isinstance(c, w.HTML) for c in downloads.children)  # no bytes until asked
    downloads.children[0].click()
    link = downloads.children[0].value
    assert 'download="botella-de-aceite-de-oliva-1-1.png"' in link  # its name, not its id
    assert f'download="{app.studio.get_asset(job.result_asset_ids[0]).file_name}"' in link


def test_errors_show_as_messages_and_start_nothing(app):
    creator = app.creator
    creator.prompt.value = "   "
    creator.generate.click()
    assert "El campo &#x27;prompt&#x27; está vacío." in creator.message.value
    assert creator.progress.job_id is None and app.studio.list_jobs() == []
    creator.magic.click()
    assert "vacío" in creator.message.value


def test_vault_filters_previews_tags_and_deletes_with_confirmation(app):
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(out, "PNG")
    logo = app.studio.upload_asset(out.getvalue(), "logo-cafe.png", kind="logo")
    vault = app.vault
    assert vault.count.value == "1 recurso"  # singular
    vault.kind.value = "image"
    assert vault.count.value == "0 recursos"
    vault.kind.value = ""
    vault.search.value = "cafe"
    assert len(vault.grid.children) == 1
    show, delete = vault.grid.children[0].children[3].children
    show.click()
    vault.preview.children[2].children[0].click()
    assert 'download="logo-cafe.png"' in vault.preview.children[2].children[0].value
    # what a platform will read of its making: an upload carries no claim of the studio's
    assert vault.preview.children[4].value.startswith("· Sin credenciales de contenido (C2PA)")
    tag_text, tag_button = vault.preview.children[3].children[:2]
    tag_text.value = "verano"
    tag_button.click()
    assert "verano" in app.studio.get_asset(logo.id).tags
    assert "verano" in vault.grid.children[0].children[2].value  # the card shows it at once
    other = app.studio.upload_asset(png(astronaut_rgb()), "otra.png")
    vault.search.value = ""
    cards = {c.children[1].value.split(">")[1].split("<")[0]: c for c in vault.grid.children}
    delete = cards["logo-cafe.png"].children[3].children[1]
    delete.click()
    # asked on the button itself, where the user is looking (the message is above the grid)
    assert delete.description == "¿Eliminar? Pulsa otra vez" and delete.button_style == "danger"
    assert "Pulsa de nuevo" in vault.message.value and app.studio.get_asset(logo.id)
    other_delete = cards["otra.png"].children[3].children[1]
    other_delete.click()  # another card asked: the first one's button is itself again
    assert delete.description == "Eliminar" and other_delete.button_style == "danger"
    app.studio.delete_asset(other.id)
    vault.search.value = "cafe"
    delete = vault.grid.children[0].children[3].children[1]
    delete.click()
    delete.click()
    assert vault.count.value == "0 recursos"
    assert "eliminado" in vault.message.value


def test_brand_kit_is_saved_and_used_by_the_video_studio(app):
    kit = app.vault.kit
    kit.cta.value = "Visítanos hoy"
    kit.primary.value = "#224466"
    serif = "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"  # fonts-dejavu-core
    font = app.studio.upload_asset(Path(serif).read_bytes(), "Marca.ttf")
    kit.font.value = font.id
    kit.save.click()
    assert "guardado" in kit.message.value
    assert app.studio.brand_kit()["cta"] == "Visítanos hoy"
    # ... and the Video Studio takes it at once: font, call to action, end-card colour
    options = app.video.options()
    assert options["subtitle_style"]["font_asset_id"] == font.id
    assert options["cta"] == "Visítanos hoy" and options["brand_colour"] == "#224466"
    kit.primary.value = "red"  # a name the picker accepts
    kit.cta.value = "x" * 81
    kit.save.click()
    assert "cta" in kit.message.value and "81" in kit.message.value
    assert app.studio.brand_kit()["colours"][0] == "#224466"  # nothing stored on error


def test_face_swap_panel_gates_on_the_licence_and_swaps(app):
    panel = app.faceswap
    assert "no comercial" in panel.notice.value and panel.swap.disabled
    assert "non-commercial" not in panel.notice.value  # one language at a time
    app.studio.upload_asset(png(astronaut_rgb()), "la-mas-nueva.png")
    assert panel.source.value is None and panel.target.value is None  # never the newest
    assert panel.preview.layout.display == "none"  # no empty (broken) image before detection
    face = app.studio.upload_asset(png(astronaut_rgb()), "astronauta.png")
    other = app.studio.upload_asset(png((astronaut_rgb() * 0.8 + 20).astype("uint8")), "otra.png")
    panel.source.value = face.id
    panel.target.value = other.id
    panel.detect.click()
    assert [v for _, v in panel.face.options] == ["largest", "0"]
    panel.target.value = face.id  # another target: the old boxes and choices go
    assert panel.preview.layout.display == "none" and len(panel.face.options) == 1
    panel.detect.click()
    assert "Caras encontradas: 1" in panel.message.value
    assert [v for _, v in panel.face.options] == ["largest", "0"]
    assert panel.preview.value[:4] == b"\x89PNG" and panel.preview.layout.display == ""
    app.studio.upload_asset(png(astronaut_rgb()), "otra-cosa.png")  # the pickers refresh ...
    assert panel.preview.layout.display == "" and len(panel.face.options) == 2  # ... choices stay
    panel.accept.value = True
    assert not panel.swap.disabled and app.studio.settings.faceswap_licence_accepted
    panel.face.value = "0"
    panel.swap.click()
    job = app.studio.wait_job(panel.progress.job_id, TIMEOUT)
    assert job.state.value == "completed"
    assert "Listo: 1 cara cambiada." in panel.message.value and len(panel.result.children) == 2
    app.vault.refresh()
    card = next(c for c in app.vault.grid.children if ">cambio de cara:" in c.children[1].value)
    assert "no comercial" in card.children[2].value  # the licence shows on the vault card


def test_face_swap_panel_picks_the_source_face_in_a_group_photo(app):
    from enfoads.testing.faces import scaled_face_patch

    patch = scaled_face_patch()
    group = np.full((400, 640, 3), 200, np.uint8)  # two people: faces #0 (left) and #1
    h, w = patch.shape[:2]
    group[50 : 50 + h, 20 : 20 + w] = patch
    group[100 : 100 + h, 400 : 400 + w] = patch
    panel = app.faceswap
    panel.accept.value = True
    panel.source.value = app.studio.upload_asset(png(group), "equipo.png").id
    panel.target.value = app.studio.upload_asset(png(astronaut_rgb()), "anuncio.png").id
    panel.detect.click()
    assert "En el origen: 2." in panel.message.value and panel.source_preview.layout.display == ""
    assert [v for _, v in panel.source_face.options] == ["largest", "0", "1"]  # no "all" here
    panel.source_face.value = "1"
    panel.swap.click()
    job = app.studio.wait_job(panel.progress.job_id, TIMEOUT)
    assert job.state.value == "completed", job.error
    assert job.params["source_face"] == 1 and job.result["source_face"] == 1
    panel.source.value = panel.target.value  # another source: its old choices go
    assert len(panel.source_face.options) == 1 and panel.source_preview.layout.display == "none"


def test_face_swap_panel_swaps_a_video_target(app, tmp_path):
    from enfoads.core import media

    clip = tmp_path / "clip.mp4"
    with media.FrameWriter(clip, 512, 512, 12) as writer:
        for i in range(6):
            writer.write(np.roll(astronaut_rgb(), 3 * i, axis=1))
    panel = app.faceswap
    panel.accept.value = True
    panel.source.value = app.studio.upload_asset(png(astronaut_rgb()), "yo.png").id
    # Uploaded through the target's own button, as a user does (it was stored as an image
    # and refused: "Un archivo .mp4 no puede ser un recurso de tipo 'image'").
    simulate_upload(panel.target.upload, "anuncio.mp4", clip.read_bytes())
    assert panel.target.message.value == ""
    assert app.studio.get_asset(panel.target.value).kind == "video"
    song = io.BytesIO()
    import wave

    with wave.open(song, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * 800)
    chosen, total = panel.target.value, app.studio.list_assets().total
    simulate_upload(panel.target.upload, "cancion.wav", song.getvalue())
    assert "Un archivo .wav no puede ser un recurso de tipo" in panel.target.message.value
    assert "'image'" not in panel.target.message.value  # the kind in words: 'Imagen'
    assert app.studio.list_assets().total == total and panel.target.value == chosen
    panel.detect.click()  # numbered on the first frame
    assert "Caras encontradas: 1" in panel.message.value and panel.preview.value[:4] == b"\x89PNG"
    panel.face.value = "0"
    panel.swap.click()
    job = app.studio.wait_job(panel.progress.job_id, TIMEOUT)
    assert job.state.value == "completed" and job.kind == "face_swap_video", job.error
    assert "6 de 6 fotogramas" in panel.message.value
    player, download = panel.result.children
    download.children[0].click()
    assert player.value[4:8] == b"ftyp" and "download=" in download.children[0].value


def test_video_studio_previews_a_voice_and_renders(app):
    panel = app.video
    panel.voice.value = "en_US-joe-medium"
    panel.preview.click()
    assert panel.player.value[:4] == b"RIFF" and panel.player.layout.display == ""
    panel.render.click()
    assert "script" in panel.message.value  # no script yet: a clear message, no job
    avatar = app.studio.upload_asset(png(astronaut_rgb()), "presentadora.png", kind="avatar")
    panel.avatar.value = avatar.id
    panel.script.value = "Fresh coffee, every morning."
    panel.aspect.value = "1:1"
    panel.render.click()
    job = app.studio.wait_job(panel.progress.job_id, TIMEOUT)
    assert job.state.value == "completed", job.error
    assert panel.video.value[4:8] == b"ftyp" and panel.video.layout.display == ""
    buttons = panel.downloads.children[0]
    assert [b.description for b in buttons.children] == ["MP4", "WAV", "SRT", "VTT"]
    for index in range(4):
        buttons.children[index].click()
    assert sum("download=" in c.value for c in buttons.children) == 4
    assert "Vídeo listo" in panel.message.value
    # The face animation: "auto" says what it means here (no LivePortrait models, no GPU), and
    # the choice reaches the job.
    labels = dict((v, label) for label, v in panel.animator.options)
    assert labels["auto"] == "Automática: clásica" and "LivePortrait" in labels["liveportrait"]
    assert job.params["animator"] == "auto"
    panel.animator.value = "classic"
    assert panel.options()["animator"] == "classic"


def test_scene_editor_adds_moves_and_removes(app):
    panel = app.video
    first, second = panel.add_scene(), panel.add_scene(kind="avatar")
    panel.move_scene(second, -1)
    assert panel.scenes.children == (second, first)
    assert [row.title.value for row in panel.scenes.children] == [
        "<b>Escena 1</b>",
        "<b>Escena 2</b>",
    ]
    # every control says what it is (they stacked unlabelled on a phone)
    assert [c.description for c in (first.kind, first.asset, first.script, first.motion)] == [
        "Tipo",
        "Imagen o clip",
        "Guion",
        "Movimiento",
    ]
    assert first.duration.description == "Duración (s)"
    panel.remove_scene(second)
    assert panel.scenes.children == (first,) and first.title.value == "<b>Escena 1</b>"
    assert second.comm is None  # closed with its controls
    assert [label for label, _ in first.motion.options][:2] == ["Acercar", "Alejar"]  # Spanish
    first.motion.value = "pan_left"
    assert first.to_scene()["motion"] == "pan_left"  # the pipeline's own key
    panel.render.click()
    assert "scenes[0].asset_id" in panel.message.value and "vacío" in panel.message.value


def test_settings_lists_models_and_starts_the_server(app):
    import httpx

    panel = app.settings
    rows = panel.models.children
    assert any(
        "inswapper_128" in row.children[1].value and "no comercial" in row.children[1].value
        for row in rows
    )
    assert all(
        row.children[0].disabled for row in rows if "fa-check-circle" in row.children[1].value
    )
    # A voice whose licence is not checked here says so, in Spanish, with its MODEL_CARD.
    davefx = next(
        row.children[1].value for row in rows if "Voz: Davefx · España" in row.children[1].value
    )  # as the Video Studio's dropdown names it, not by its Piper key
    assert "licencia sin verificar" in davefx
    assert (
        'href="https://huggingface.co/rhasspy/piper-voices/blob/main/es/es_ES/davefx/medium/MODEL_CARD"'
        in davefx
    )
    joe = next(
        row.children[1].value
        for row in rows
        if "Voz: Joe · Estados Unidos" in row.children[1].value
    )
    assert "CC0" in joe and "sin verificar" not in joe
    panel.server_toggle.value = True
    try:
        assert "127.0.0.1" in panel.server_info.value
        url = panel.server.url
        assert httpx.get(url + "/").json()["status"] == "ok"
    finally:
        panel.server_toggle.value = False
    assert panel.server is None


def simulate_upload(upload, name: str, content: bytes) -> None:
    """What the page sends when the user picks a file, in each ipywidgets' own format."""
    from datetime import datetime

    from enfoads.widgets.compat import IPYWIDGETS_8

    if IPYWIDGETS_8:
        upload.value = (
            {
                "name": name,
                "type": "image/png",
                "size": len(content),
                "content": memoryview(content),
                "last_modified": datetime.now(),
            },
        )
    else:  # 7.x: metadata and data, then the counter that makes ``value``
        upload.metadata = [
            {"name": name, "type": "image/png", "size": len(content), "lastModified": 0}
        ]
        upload.data = [content]
        upload._counter += 1


def test_an_upload_goes_into_the_vault_and_is_chosen(app):
    """On ipywidgets 8 (Voila) and 7.7.1 (Colab, in scripts/colab-env.sh) alike."""
    picker = app.faceswap.source
    before = app.studio.list_assets().total
    simulate_upload(picker.upload, "cara.png", png(astronaut_rgb()))
    assert app.studio.list_assets().total == before + 1
    asset = app.studio.get_asset(picker.value)
    assert asset.name == "cara.png" and asset.kind == "image"
    simulate_upload(picker.upload, "roto.png", b"not a picture")
    assert picker.message.value and "roto.png" in picker.message.value  # named, in the panel
    assert app.studio.list_assets().total == before + 1 and picker.value == asset.id


def test_a_language_switch_keeps_the_tab_and_ends_the_old_panels_subscriptions(app):
    """The bus holds as many handlers after two switches as before (it grew 26 → 46 → 66)."""
    handlers = len(app.studio.bus._handlers)
    app.selected_index = TABS.index("vault")
    app.settings.language.value = "en"
    assert (
        app.selected_index == TABS.index("vault")
        and tab_titles(app)[TABS.index("vault")] == "BrandVault"
    )
    assert app.vault.count.value.endswith("assets")
    app.settings.language.value = "es"
    assert len(app.studio.bus._handlers) == handlers
    assert app.selected_index == TABS.index("vault") and app.vault.count.value.endswith("recursos")


def test_the_vault_pages_through_any_number_of_assets_grouped(app):
    from enfoads.core.assets import INPUT_TAG

    studio = app.studio
    for i in range(60):
        studio.assets.add_bytes(
            png(np.full((24, 24, 3), i, np.uint8)), "image", name=f"Campaña {i:02d}"
        )
    studio.assets.add_bytes(
        png(np.full((24, 24, 3), 200, np.uint8)), "image", name="source.upload", tags=(INPUT_TAG,)
    )
    vault = app.vault
    vault.refresh()
    assert vault.count.value == "60 recursos" and len(vault.grid.children) == 24
    assert vault.page_label.value == "Página 1 de 3" and vault.previous.disabled
    vault.next.click()
    vault.next.click()
    assert vault.page_label.value == "Página 3 de 3" and vault.next.disabled
    names = [c.children[1].value for c in vault.grid.children]
    assert len(names) == 12 and ">Campaña 00<" in names[-1]  # the 60th, the oldest
    vault.search.value = "campana 0"  # accents and case ignored; back to the first page
    assert vault.count.value == "10 recursos" and vault.page_label.value == "Página 1 de 1"
    vault.search.value = ""
    vault.inputs.value = True  # the face-swap input shows only when asked
    assert vault.count.value == "61 recursos"


def test_deleting_the_kits_logo_in_the_vault_warns_and_updates_the_kit(app):
    logo = app.studio.upload_asset(png(np.zeros((40, 40, 3), np.uint8)), "marca.png", kind="logo")
    app.studio.save_brand_kit(logo_asset_id=logo.id)
    vault = app.vault
    vault.kit.reload()
    assert vault.kit.logo.value == logo.id
    vault.refresh()
    delete = vault.grid.children[0].children[3].children[1]
    delete.click()
    assert "logo de tu kit de marca" in vault.message.value and app.studio.assets.exists(logo.id)
    delete.click()
    assert not app.studio.assets.exists(logo.id)
    assert app.studio.brand_kit()["logo_asset_id"] is None and vault.kit.logo.value is None
    vault.kit.cta.value = "Compra hoy"
    vault.kit.save.click()
    assert "guardado" in vault.kit.message.value


def test_a_failed_job_shows_its_reason_and_retries_from_the_panel_and_home(app):
    studio = app.studio
    creator = app.creator
    creator.prompt.value = "taza de café"
    real_run = studio.jobs._handlers["generate_image"]

    def broken(ctx):
        raise RuntimeError("the GPU fell off")

    studio.jobs._handlers["generate_image"] = broken
    creator.generate.click()
    job = studio.wait_job(creator.progress.job_id, TIMEOUT)
    assert job.state.value == "failed"
    # the panel follows the job's events, which may land just after wait_job returns
    assert wait_until(lambda: "the GPU fell off" in creator.progress.stage.text)
    assert "the GPU fell off" not in creator.message.value  # said once, beside Reintentar
    assert wait_until(
        lambda: creator.progress.retry.layout.display == "" and not creator.generate.disabled
    )
    assert wait_until(lambda: "the GPU fell off" in app.home.jobs.children[0].children[0].value)
    row = app.home.jobs.children[0]
    assert row.children[1].description == "Reintentar"
    studio.jobs._handlers["generate_image"] = real_run
    creator.progress.retry.click()
    retried = studio.wait_job(creator.progress.job_id, TIMEOUT)
    assert retried.state.value == "completed" and retried.retry_of == job.id
    assert creator.progress.retry.layout.display == "none" and len(creator.gallery.children) == 1
    row.children[1].click()  # Home's retry of the same failed job: one more run
    assert "lanzado de nuevo" in app.home.jobs_message.value
    latest = studio.list_jobs(limit=1)[0]
    assert latest.retry_of == job.id
    studio.wait_job(latest.id, TIMEOUT)


def test_video_studio_reads_plainly_and_picks_the_only_avatar(app):
    panel = app.video
    labels = dict((v, k) for k, v in panel.voice.options)
    assert labels["es_MX-claude-high"] == "Claude · México · calidad alta · se descarga al usarla"
    assert labels["en_US-joe-medium"] == "Joe · Estados Unidos · calidad media"
    assert panel.avatar.value is None
    avatar = app.studio.upload_asset(png(astronaut_rgb()), "presentadora.png", kind="avatar")
    assert panel.avatar.value == avatar.id  # the only avatar is chosen
    panel.karaoke.value = True
    panel.highlight.value = "#FFFFFF"  # the same as the text: the words would not show
    assert "casi no se distingue" in panel.contrast.value
    panel.highlight.value = "#FFD400"
    assert panel.contrast.value == ""


def live_widgets() -> int:
    """Widgets the kernel still holds (ipywidgets 8 and 7.7.1 keep them in different places)."""
    registry = getattr(w.Widget, "widgets", None)
    if registry is None:
        registry = w.widgets.widget._instances
    return len(registry)


def test_open_pages_update_only_what_changed_and_close_what_they_replace(app):
    """Each asset_added made every panel rebuild its vault grid, thumbnails and job rows, and
    the widgets it replaced were never closed: page kernels grew from 130 MB to 600 MB in a
    24-image job. Unchanged cards and rows are kept; replaced ones are closed."""
    studio, vault, home = app.studio, app.vault, app.home
    first = studio.upload_asset(png(astronaut_rgb()), "uno.png")
    card = vault.grid.children[0]
    thumb = home.recent.children[0]
    for i in range(8):
        studio.upload_asset(png(np.full((32, 32, 3), 20 * i, np.uint8)), f"foto-{i}.png")
    assert vault.grid.children[-1] is card  # the first card, still the same widgets
    assert len(home.recent.children) == 6 and thumb.comm is None  # left the six: closed
    steady = live_widgets()
    for _ in range(5):  # refreshes with nothing new build nothing
        vault.refresh()
        home.refresh_jobs()
        home.refresh_assets()
    assert live_widgets() == steady
    studio.delete_asset(first.id)
    assert card not in vault.grid.children
    assert card.comm is None and all(c.comm is None for c in card.children)  # closed
    assert live_widgets() < steady


def test_export_panel_makes_each_platforms_zip_with_a_checklist(app):
    import re
    import time

    from enfoads.core.provenance import Claim

    panel = app.export
    made = app.studio.assets.add_bytes(
        png(astronaut_rgb()), "image", name="café", model_ids=["test/sdxl"], claim=Claim()
    )
    upload = app.studio.upload_asset(b"WEBVTT\n\n", "subs.vtt")
    assert made.id not in {v for _, v in panel.assets.options}  # read when the tab opens
    app.selected_index = TABS.index("export")
    offered = {v for _, v in panel.assets.options}
    assert made.id in offered and upload.id not in offered  # images and videos only
    panel.run.click()
    assert "Elige al menos una imagen" in panel.message.value and panel.progress.job_id is None
    panel.choose([made.id])
    for platform, box in panel.platforms.items():
        box.value = platform in ("google", "linkedin")
    panel.run.click()
    job = app.studio.wait_job(panel.progress.job_id, TIMEOUT)
    assert job.state.value == "completed", job.error
    deadline = time.monotonic() + 10
    while not panel.result.children and time.monotonic() < deadline:
        time.sleep(0.1)
    google, google_zip, linkedin, _ = panel.result.children
    ready = re.search(r"Google Ads: (\d+) de (\d+) archivos listos", google.value)
    assert ready and ready[1] == ready[2] != "0", google.value
    assert "✔ google-landscape-1.91x1-" in google.value and "✘" not in google.value
    assert "LinkedIn:" in linkedin.value and not panel.run.disabled
    google_zip.children[0].click()
    assert 'download="' in google_zip.children[0].value and ".zip" in google_zip.children[0].value


def wait_until(check, seconds=30):
    import time

    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)
    return check()


def test_variants_panel_from_proposals_to_a_board_to_publish_and_back_with_results(app):
    panel = app.variants
    panel.product.value = ""
    panel.run.click()  # an empty brief: named, nothing queued
    assert panel.progress.job_id is None and "product" in panel.message.value
    assert "Traceback" not in panel.message.value
    panel.product.value = "Café de Chiapas"
    panel.offer.value = "-20 %"
    panel.tone.value = "urgent"
    panel.headlines.value = "Despierta con sabor"  # the user's own line stays first
    panel.propose.click()
    app.studio.wait_job(panel.copy_progress.job_id, TIMEOUT)
    assert wait_until(lambda: len(panel.headlines.value.splitlines()) == 4)
    headlines = panel.headlines.value.splitlines()
    assert headlines[0] == "Despierta con sabor" and "-20 %: solo esta semana" in headlines
    assert panel.ctas.value.splitlines()[0] == "Compra ya"
    panel.headlines.value = "\n".join(headlines[:2])
    panel.ctas.value = "Compra ya"
    panel.concepts.value = "taza humeante sobre mesa de madera"
    panel.placements.value = ("1:1",)
    assert panel.count.value == "2 variantes × 1 formatos = 2 imágenes"
    panel.run.click()
    job = app.studio.wait_job(panel.progress.job_id, TIMEOUT)
    assert job.state.value == "completed", job.error
    assert wait_until(lambda: len(panel.board.grid.children) == 2)
    brief_id = job.result["brief_id"]
    assert panel.briefs.value == brief_id  # the new brief, open on the board
    ids = sorted(job.result["variants"])
    panel.board.filters["headline"].value = "B"
    assert [c.variant_id for c in panel.board.grid.children] == [ids[1]]
    panel.board.filters["headline"].value = ""
    panel.board.grid.children[0].children[2].value = False  # drop the first
    assert panel.board.summary.value == "1 de 2 variantes elegidas"
    panel.board.export.click()  # the kept one's file, chosen in Publicar
    assert app.selected_index == TABS.index("export")
    assert app.export.assets.value == (job.result["variants"][ids[1]]["files"]["1:1"],)
    # the platform's results come back, and the next brief starts from what won
    csv = f"Ad name,Impressions,Clicks\n{ids[0]},20000,90\n{ids[1]},20000,300\n".encode()
    panel.import_button.click()
    assert "Sube primero el informe CSV" in panel.results_message.value
    simulate_upload(panel.results_file, "meta.csv", csv)
    panel.import_button.click()
    done = app.studio.wait_job(panel.results_progress.job_id, TIMEOUT)
    assert done.state.value == "completed", done.error
    assert wait_until(lambda: panel.results.children)
    assert f"La variante {ids[1]} gana" in panel.results.children[0].value
    assert "★ " + ids[1] in panel.results.children[1].value
    panel.results.children[-1].click()  # "Nuevo brief desde lo que ganó"
    assert panel.headlines.value.splitlines()[0] == headlines[1]  # headline B first now
