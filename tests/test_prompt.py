import pytest

from enfoads.core.errors import InvalidInput
from enfoads.core.pipelines import prompt as prompt_mod
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio


def test_language_detection():
    assert prompt_mod.detect_language("zapatillas rojas en la playa") == "es"
    assert prompt_mod.detect_language("Café de especialidad para la mañana") == "es"
    assert prompt_mod.detect_language("red sneakers on the beach") == "en"
    assert prompt_mod.detect_language("iPhone 15") == "en"


def test_rules_for_spanish_with_style_placement_and_brand_colours(studio):
    result = studio.enhance_prompt("zapatillas rojas en la playa", style="product",
                                   placement="9:16", brand_colors=["ff5a00", "#1A1A1A"])
    assert result.engine == "rules" and result.language == "es"
    assert result.enhanced.startswith("zapatillas rojas en la playa, ")
    assert prompt_mod.STYLES["product"].words in result.enhanced
    assert prompt_mod.COMPOSITION["9:16"] in result.enhanced
    assert "brand colour palette #FF5A00 and #1A1A1A" in result.enhanced
    assert result.notices == ("The prompt is in Spanish and no translation model is set; "
                              "SDXL understands English best.",)


def test_rules_for_english_do_not_repeat_what_the_prompt_says(studio):
    result = studio.enhance_prompt("a coffee cup, soft studio lighting", product="coffee cup")
    assert result.language == "en" and result.notices == ()
    assert result.enhanced.count("soft studio lighting") == 1
    assert "hero shot of the coffee cup" in result.enhanced
    assert prompt_mod.COMPOSITION["1:1"] in result.enhanced


def test_bad_prompt_input(studio):
    for kwargs, field in (({"prompt": " "}, "prompt"), ({"prompt": "x" * 2000}, "prompt"),
                          ({"prompt": "ok", "style": "??"}, "style"),
                          ({"prompt": "ok", "brand_colors": ["red"]}, "brand_colors")):
        with pytest.raises(InvalidInput) as err:
            studio.enhance_prompt(**kwargs)
        assert err.value.field == field


def test_llm_path_with_a_tiny_random_model(tmp_path):
    from enfoads.testing.sdxl import build_tiny_llm

    llm = build_tiny_llm(tmp_path / "models")
    s = load_settings(data_dir=tmp_path / "data", device="cpu", language="en",
                      prompt_llm_model=str(llm))
    with Studio(s) as st:
        result = st.enhance_prompt("zapatillas rojas en la playa", placement="16:9")
        assert result.engine == "llm" and result.notices == ()
        llm_text = result.enhanced.split(", high-end advertising image")[0]
        assert llm_text and llm_text != "zapatillas rojas en la playa"
        again = st.enhance_prompt("zapatillas rojas en la playa", placement="16:9")
        assert again.enhanced == result.enhanced  # greedy decoding: deterministic
        assert prompt_mod.COMPOSITION["16:9"] in result.enhanced
        models = {m["name"]: m for m in st.gpu_status()["models"]}
        assert models["prompt-llm"]["loads"] == 1 and models["prompt-llm"]["where"] == "cpu"
        assert st.enhance_prompt("hola", use_llm=False).engine == "rules"


def test_llm_fallback_to_rules_with_a_notice(tmp_path):
    s = load_settings(data_dir=tmp_path, device="cpu", language="es",
                      prompt_llm_model="Qwen/Qwen2.5-0.5B-Instruct")
    with Studio(s) as st:
        result = st.enhance_prompt("a bottle of wine")
    assert result.engine == "rules"
    assert result.enhanced.startswith("a bottle of wine, high-end advertising image")
    assert len(result.notices) == 1
    assert result.notices[0].startswith("El modelo de lenguaje 'Qwen/Qwen2.5-0.5B-Instruct' "
                                        "no está disponible")
