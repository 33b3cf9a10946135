"""Widget tests: build the panels over a Studio with the tiny model, click, assert traits."""

import pytest

pytest.importorskip("ipywidgets")

from enfoads.core.studio import Studio  # noqa: E402
from enfoads.widgets.app import StudioApp  # noqa: E402

TIMEOUT = 300


@pytest.fixture
def app(tiny_settings):
    studio = Studio(tiny_settings(language="es")).start()
    yield StudioApp(studio)
    studio.close()


def test_tabs_are_spanish_first(app):
    assert app.titles == ("Creador de anuncios", "BrandVault")
    assert app.creator.generate.description == "Generar"


def test_magic_prompt_fills_the_editable_prompt(app):
    creator = app.creator
    creator.prompt.value = "zapatillas rojas en la playa"
    creator.placements.value = ("9:16",)
    creator.magic.click()
    assert creator.enhanced.value.startswith("zapatillas rojas en la playa, ")
    assert "vertical composition" in creator.enhanced.value
    assert "español" in creator.message.value  # the notice about Spanish prompts


def test_generate_shows_progress_gallery_and_vault(app):
    creator, vault = app.creator, app.vault
    assert vault.count.value == "0 recursos"
    creator.prompt.value = "botella de aceite de oliva"
    creator.placements.value = ("1:1", "16:9")
    creator.seed.value = 21
    creator.generate.click()
    job_id = creator.progress.job_id
    assert job_id and creator.generate.disabled and not creator.progress.cancel.disabled
    job = app.studio.wait_job(job_id, TIMEOUT)
    assert job.state.value == "completed"
    assert creator.progress.bar.value == 100 and creator.progress.bar.bar_style == "success"
    assert creator.progress.stage.value == "Completado"
    assert len(creator.gallery.children) == 2 and not creator.generate.disabled
    labels = [card.children[1].value for card in creator.gallery.children]
    assert labels == ["1:1 · 21", "16:9 · 21"]
    assert "Listo: 2 imágenes (semilla 21)." in creator.message.value
    assert vault.count.value == "2 recursos" and len(vault.grid.children) == 2


def test_errors_show_as_messages_and_start_nothing(app):
    creator = app.creator
    creator.prompt.value = "   "
    creator.generate.click()
    assert "El campo &#x27;prompt&#x27; está vacío." in creator.message.value
    assert creator.progress.job_id is None and app.studio.list_jobs() == []
    creator.magic.click()
    assert "vacío" in creator.message.value


def test_vault_filters_and_deletes_with_confirmation(app):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(out, "PNG")
    logo = app.studio.upload_asset(out.getvalue(), "logo-cafe.png", kind="logo")
    vault = app.vault
    assert vault.count.value == "1 recursos"
    vault.kind.value = "image"
    assert vault.count.value == "0 recursos"
    vault.kind.value = ""
    vault.search.value = "cafe"
    assert len(vault.grid.children) == 1
    delete = vault.grid.children[0].children[2]
    delete.click()
    assert "Pulsa de nuevo" in vault.message.value and app.studio.get_asset(logo.id)
    delete.click()
    assert vault.count.value == "0 recursos"
    assert "eliminado" in vault.message.value
