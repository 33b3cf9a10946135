import json
import re
from pathlib import Path

import pytest

from enfoads.core import settings as settings_mod
from enfoads.core.settings import Settings, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_are_the_colab_t4_profile(tmp_path):
    s = load_settings(data_dir=tmp_path)
    assert s.gpu_budget_gb == 12.0 and s.ram_budget_gb == 12.7
    assert s.language == "es" and s.workers == 1
    assert s.db_url == f"sqlite:///{tmp_path / 'enfoads.db'}"
    assert s.models_dir == tmp_path / "models"


def test_env_beats_file_and_kwargs_beat_env(tmp_path, monkeypatch):
    (tmp_path / "settings.json").write_text(json.dumps({"language": "en", "workers": 3}))
    monkeypatch.setenv("ENFOADS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENFOADS_WORKERS", "2")
    s = load_settings()
    assert s.data_dir == tmp_path.resolve()
    assert s.language == "en"  # from the file
    assert s.workers == 2  # env wins over the file
    assert load_settings(workers=5).workers == 5  # arguments win over env


def test_bad_file_and_bad_values_are_refused(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"langauge": "en"}))
    with pytest.raises(ValueError, match="langauge"):
        load_settings(data_dir=tmp_path)
    (tmp_path / "settings.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_settings(data_dir=tmp_path)
    (tmp_path / "settings.json").unlink()
    with pytest.raises(ValueError):
        load_settings(data_dir=tmp_path, language="fr")


def test_data_dir_is_on_drive_when_drive_is_mounted(tmp_path, monkeypatch):
    drive = tmp_path / "drive" / "MyDrive"
    monkeypatch.setattr(settings_mod, "COLAB_DRIVE", drive)
    assert settings_mod.default_data_dir() == Path.home() / ".enfoads"
    drive.mkdir(parents=True)
    assert settings_mod.default_data_dir() == drive / "EnfoadsStudio"


def test_every_setting_is_documented_in_the_readme():
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"`(ENFOADS_[A-Z0-9_]+)`", text))
    expected = {f"ENFOADS_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "settings missing from the README"
    assert documented - expected == set(), "README documents settings that do not exist"


def test_every_job_kind_has_a_name_in_both_languages(tmp_path):
    from enfoads.core.i18n import CATALOG
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    with Studio(load_settings(data_dir=tmp_path, device="cpu")) as studio:
        kinds = set(studio.jobs.kinds())
    assert kinds >= {"generate_image", "face_swap", "render_video"}
    for kind in kinds:
        assert CATALOG[f"job.{kind}"]["es"] and CATALOG[f"job.{kind}"]["en"]


def test_every_asset_kind_has_a_name_in_both_languages(studio):
    from enfoads.core.assets import ASSET_KINDS, asset_kinds
    from enfoads.core.i18n import CATALOG

    assert "export" in asset_kinds()  # declared by its capability, registered with the studio
    own = [k for cap in studio.capabilities.values() for k in cap.asset_kinds()]
    for kind in [*ASSET_KINDS, *own]:
        assert CATALOG[f"kind.{kind}"]["es"] and CATALOG[f"kind.{kind}"]["en"]


def test_a_language_switch_reaches_the_magic_prompt_and_the_queue(tmp_path):
    """One live settings object: no copy keeps the old language after a switch."""
    from enfoads.core.jobs import JobResult
    from enfoads.core.studio import Studio

    with Studio(load_settings(data_dir=tmp_path, device="cpu", language="es")) as studio:
        before = studio.enhance_prompt("zapatillas rojas en la playa").notices
        studio.update_settings(language="en")
        after = studio.enhance_prompt("zapatillas rojas en la playa").notices
        assert before and after and before != after
        assert all("Spanish" in n or "English" in n for n in after), after
        studio.jobs.register("hold", lambda ctx: JobResult(data={"stage": ctx.t("stage.saving")}))
        job = studio.wait_job(studio.submit("hold", {}).id, 30)
        assert job.result["stage"] == "Saving" and job.stage == "Completed"


def test_a_bad_variable_or_settings_file_is_named_without_a_traceback(
    tmp_path, monkeypatch, capsys
):
    from enfoads.cli import main
    from enfoads.core.errors import InvalidSetting

    monkeypatch.setenv("ENFOADS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENFOADS_COMPILE_AUTOTUNE", "-maybe")
    with pytest.raises(InvalidSetting) as caught:
        load_settings()
    assert caught.value.field == "compile_autotune"
    assert main(["openapi"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "El ajuste 'compile_autotune' (ENFOADS_COMPILE_AUTOTUNE o settings.json) no es válido: "
        "«-maybe» no es una opción; debe ser uno de: auto, on, off."  # the value, named back
    )
    monkeypatch.delenv("ENFOADS_COMPILE_AUTOTUNE")
    (tmp_path / "settings.json").write_text(json.dumps({"language": "fr"}))
    assert main(["info"]) == 2  # the language itself is bad: Spanish
    err = capsys.readouterr().err
    assert "ENFOADS_LANGUAGE" in err and "Traceback" not in err and err.startswith("El ajuste")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"langauge": "en"}', "tiene ajustes desconocidos: langauge."),
        ('{"language": ', "no es JSON válido."),
        ("[1]", "debe contener un objeto JSON ({...})."),
    ],
)
def test_a_bad_settings_file_is_named_by_the_command_line(
    tmp_path, monkeypatch, capsys, content, says
):
    from enfoads.cli import main

    (tmp_path / "settings.json").write_text(content)
    monkeypatch.setenv("ENFOADS_DATA_DIR", str(tmp_path))
    assert main(["info"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"El archivo de ajustes {tmp_path / 'settings.json'} {says}"
