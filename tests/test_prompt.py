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
    """No translator on disk and no network: the rules answer at once, in Spanish, saying so."""
    result = studio.enhance_prompt(
        "zapatillas rojas en la playa",
        style="product",
        placement="9:16",
        brand_colors=["ff5a00", "#1A1A1A"],
    )
    assert result.engine == "rules" and result.language == "es"
    assert result.enhanced.startswith("zapatillas rojas en la playa, ")
    assert "seamless background" not in result.enhanced  # "en la playa" names the place
    # ... and a beach is not lit like a studio (the light named the studio the setting left)
    assert "softbox" not in result.enhanced and "studio" not in result.enhanced
    assert prompt_mod.SCENE_LIGHTING in result.enhanced
    indoor = studio.enhance_prompt("una botella de vino", style="none", placement="1:1")
    assert prompt_mod.DEFAULT_LIGHTING in indoor.enhanced  # no place named: the studio light
    assert prompt_mod.COMPOSITION["9:16"] in result.enhanced
    assert "orange and black brand colour accents" in result.enhanced and "#" not in result.enhanced
    assert result.notices[0].startswith(
        "The prompt is in Spanish and the translator is not downloaded"
    )
    assert studio.list_jobs() == []  # offline: no download job that can only fail


def test_rules_for_english_do_not_repeat_what_the_prompt_says(studio):
    result = studio.enhance_prompt("a coffee cup, soft studio lighting", product="coffee cup")
    assert result.language == "en" and not any("Spanish" in n for n in result.notices)
    assert result.enhanced.count("soft studio lighting") == 1
    assert "hero shot of the coffee cup" in result.enhanced
    assert prompt_mod.COMPOSITION["1:1"] in result.enhanced


def test_bad_prompt_input(studio):
    for kwargs, field in (
        ({"prompt": " "}, "prompt"),
        ({"prompt": "x" * 2000}, "prompt"),
        ({"prompt": "ok", "style": "??"}, "style"),
        ({"prompt": "ok", "brand_colors": ["red"]}, "brand_colors"),
    ):
        with pytest.raises(InvalidInput) as err:
            studio.enhance_prompt(**kwargs)
        assert err.value.field == field


def test_llm_path_with_a_tiny_random_model(tmp_path):
    from enfoads.testing.sdxl import build_tiny_llm

    llm = build_tiny_llm(tmp_path / "models")
    s = load_settings(
        data_dir=tmp_path / "data", device="cpu", language="en", prompt_llm_model=str(llm)
    )
    with Studio(s) as st:
        result = st.enhance_prompt("zapatillas rojas en la playa", placement="16:9")
        assert result.engine == "llm" and "translator" in result.notices[0]  # it is missing
        llm_text = result.enhanced.split(", soft studio lighting")[0]
        assert llm_text and llm_text != "zapatillas rojas en la playa"
        again = st.enhance_prompt("zapatillas rojas en la playa", placement="16:9")
        assert again.enhanced == result.enhanced  # greedy decoding: deterministic
        # one long "word" of random bytes: even the framing gives way, and the notice says so
        assert (
            prompt_mod.COMPOSITION["16:9"] in result.enhanced or "77 tokens" in result.notices[-1]
        )
        models = {m["name"]: m for m in st.gpu_status()["models"]}
        assert models["prompt-llm"]["loads"] == 1 and models["prompt-llm"]["where"] == "cpu"
        assert st.enhance_prompt("hola", use_llm=False).engine == "rules"


def test_llm_fallback_to_rules_with_a_notice(tmp_path):
    s = load_settings(
        data_dir=tmp_path,
        device="cpu",
        language="es",
        prompt_llm_model="Qwen/Qwen2.5-0.5B-Instruct",
    )
    with Studio(s) as st:
        result = st.enhance_prompt("a bottle of wine")
    assert result.engine == "rules"
    assert result.enhanced.startswith("a bottle of wine, soft studio lighting")
    assert len(result.notices) == 1
    assert result.notices[0].startswith(
        "El modelo de lenguaje 'Qwen/Qwen2.5-0.5B-Instruct' no está disponible"
    )


# -- Spanish shop prompts through the translator and the rules ------------------------------
SHOP_PROMPTS = [
    "descuento del 20% en cremas hidratantes naturales para piel seca",
    "zapatillas rojas sobre arena de playa al atardecer",
    "café recién hecho en una taza blanca sobre una mesa de madera con luz natural",
    "perfume de lujo con flores de jazmín, fondo elegante",
    "hamburguesa artesanal con papas fritas en un restaurante de barrio",
    "bolso de cuero marrón hecho a mano, colección otoño",
    "gafas de sol para el verano en la piscina",
    "pastel de chocolate para cumpleaños con velas encendidas",
    "auriculares inalámbricos con cancelación de ruido para el gimnasio",
    "vino tinto reserva de la Rioja en una cena romántica",
    "camiseta de algodón orgánico, envío gratis a todo México",
    "mochila escolar resistente para niños, vuelta al cole",
    "helado artesanal de fresa en un parque soleado",
    "reloj inteligente deportivo que mide el ritmo cardíaco",
    "jabón natural de lavanda y aceite de oliva hecho en Andalucía",
    "tacos al pastor con piña y cilantro, oferta de martes",
    "sofá moderno gris en un salón luminoso",
    "crema solar para la playa, protección 50",
    "pan de masa madre recién horneado en la panadería",
    "set de maquillaje con paleta de sombras brillantes y luz de neón",
]
SCENE = (
    "playa",
    "mesa",
    "restaurante",
    "piscina",
    "gimnasio",
    "cena",
    "parque",
    "salon",
    "panaderia",
)
LIGHT = ("atardecer", "luz natural", "velas", "soleado", "luminoso", "neon")


@pytest.fixture(scope="module")
def shop_studio(tmp_path_factory):
    """A Studio with the tiny random MarianMT as translator, and SDXL's real CLIP BPE."""
    from transformers import CLIPTokenizer

    from enfoads.testing.text_models import build_tiny_marian, write_real_clip_tokenizer

    root = tmp_path_factory.mktemp("text-models")
    marian = build_tiny_marian(root / "opus-mt-es-en", SHOP_PROMPTS)
    write_real_clip_tokenizer(root / "sdxl-base" / "tokenizer")
    s = load_settings(
        data_dir=root / "data",
        device="cpu",
        language="es",
        prompt_translation_model=str(marian),
        image_base_model=str(root / "sdxl-base"),
    )
    with Studio(s) as st:
        yield st, CLIPTokenizer.from_pretrained(root / "sdxl-base" / "tokenizer")


@pytest.mark.parametrize("placement", ["9:16", "1:1", "4:5", "16:9"])
def test_spanish_shop_prompts_become_fitting_english_prompts(shop_studio, placement):
    from enfoads.core.pipelines.prompt import plain

    studio, clip = shop_studio
    for prompt in SHOP_PROMPTS:
        result = studio.enhance_prompt(
            prompt, style="product", placement=placement, brand_colors=["#E63946", "#1D3557"]
        )
        text = result.enhanced
        assert result.language == "es" and result.engine == "translation", prompt
        assert not text.startswith(prompt)  # SDXL gets the translation, not the Spanish
        tokens = len(clip(text).input_ids)  # with the start and end tokens
        assert tokens <= 77, (prompt, tokens)
        assert "#" not in text and "E63946" not in text
        said = plain(prompt)
        if any(word in said for word in SCENE):
            assert "seamless background" not in text, prompt
        if any(word in said for word in LIGHT):
            assert "softbox" not in text and "studio lighting" not in text, prompt
        # what was dropped to fit went in order: the ad boilerplate before the colours,
        # the colours before the placement's framing
        has = lambda phrase: phrase in text  # noqa: E731
        assert has(prompt_mod.COMPOSITION[placement])  # kept: the subject shrinks first
        if has(prompt_mod.AD_BASE):
            assert has("brand colour accents")
        if tokens == 77 or not has(prompt_mod.AD_BASE):
            assert any("77 tokens" in n for n in result.notices)


# What a good translation of SHOP_PROMPTS reads like: the rules must fit them whole.
SHOP_PROMPTS_EN = [
    "20% off natural moisturizing creams for dry skin",
    "red sneakers on beach sand at sunset",
    "freshly brewed coffee in a white cup on a wooden table with natural light",
    "luxury perfume with jasmine flowers, elegant background",
    "craft burger with fries in a neighbourhood restaurant",
    "handmade brown leather bag, autumn collection",
    "sunglasses for summer at the pool",
    "chocolate birthday cake with lit candles",
    "noise-cancelling wireless headphones for the gym",
    "Rioja reserve red wine at a romantic dinner",
    "organic cotton t-shirt, free shipping across Mexico",
    "sturdy school backpack for kids, back to school",
    "artisan strawberry ice cream in a sunny park",
    "sports smartwatch that tracks heart rate",
    "natural lavender and olive oil soap made in Andalusia",
    "tacos al pastor with pineapple and coriander, Tuesday deal",
    "modern grey sofa in a bright living room",
    "sunscreen for the beach, SPF 50",
    "freshly baked sourdough bread at the bakery",
    "makeup set with a shimmering eyeshadow palette and neon light",
]


@pytest.mark.parametrize("placement", ["9:16", "1:1", "4:5", "16:9"])
def test_good_translations_keep_every_rule_and_fit(shop_studio, placement):
    studio, clip = shop_studio
    whole = 0
    for prompt in SHOP_PROMPTS_EN:
        result = studio.enhance_prompt(
            prompt, style="product", placement=placement, brand_colors=["#E63946", "#1D3557"]
        )
        text = result.enhanced
        assert result.engine == "rules" and text.startswith(prompt)
        assert len(clip(text).input_ids) <= 77
        assert prompt_mod.COMPOSITION[placement] in text
        assert "red and navy blue brand colour accents" in text
        whole += prompt_mod.STYLES["product"].look in text
    assert whole >= 15  # the style's look fits beside most subjects


def test_the_estimate_never_undercounts_clip(shop_studio):
    from enfoads.core.pipelines.prompt import estimate_tokens

    _, clip = shop_studio
    texts = (
        SHOP_PROMPTS
        + SHOP_PROMPTS_EN
        + sorted(prompt_mod.RULE_WORDS)
        + [
            f"{p}, {prompt_mod.STYLES['product'].words}, "
            f"{prompt_mod.COMPOSITION['9:16']}, {prompt_mod.AD_BASE}"
            for p in (
                "red sneakers on beach sand at sunset",
                "organic cotton t-shirt, free shipping",
            )
        ]
    )
    for text in texts:
        assert estimate_tokens(text) >= len(clip(text).input_ids) - 2, text


def test_brand_colours_are_named():
    assert prompt_mod.colour_name("#FF0000") == "red"
    assert prompt_mod.colour_name("1D3557") == "navy blue"
    assert prompt_mod.colour_name("#FFFFFF") == "white"
    assert prompt_mod.colour_name("#F4A261") == "sandy brown"


def test_a_generation_composes_the_magic_prompt_for_each_placement(tiny_settings, tmp_path):
    """``magic_prompt``: the job translates the Spanish and frames each placement itself (the
    Ad Creator used to send the first placement's text to all); each PNG stores the exact
    text its image was made from."""
    import json

    from PIL import Image

    from enfoads.testing.text_models import build_tiny_marian

    marian = build_tiny_marian(tmp_path / "opus-mt-es-en", SHOP_PROMPTS)
    with Studio(tiny_settings(prompt_translation_model=str(marian), language="es")) as st:
        job = st.generate_images(
            prompt="zapatillas rojas sobre arena de playa al atardecer",
            style="product",
            placements=["9:16", "16:9"],
            magic_prompt=True,
        )
        done = st.wait_job(job.id, 300)
        assert done.state.value == "completed", done.error
        prompts = done.result["prompts"]
        assert prompt_mod.COMPOSITION["9:16"] in prompts["9:16"]
        assert prompt_mod.COMPOSITION["16:9"] in prompts["16:9"]
        for _placement, text in prompts.items():
            assert not text.startswith("zapatillas")  # translated before the rules
            assert "seamless background" not in text and "softbox" not in text
        for image in done.result["images"]:
            png = Image.open(st.assets.file_path(st.get_asset(image["asset_id"])))
            record = json.loads(png.text["enfoads"])
            assert record["enhanced_prompt"] == prompts[image["placement"]]
            assert record["prompt"] == "zapatillas rojas sobre arena de playa al atardecer"


def test_a_spanish_prompt_reaches_sdxl_in_english_without_the_magic_prompt(
    tiny_settings, tmp_path, capfd
):
    """A raw request (the API without ``magic_prompt``) sent Spanish words to SDXL's English
    text encoders with no notice: the job translates them now, and the libraries' warnings
    ("truncated to 77 tokens") stay out of the user's cell."""
    import json

    from PIL import Image

    from enfoads.testing.text_models import build_tiny_marian

    marian = build_tiny_marian(tmp_path / "opus-mt-es-en", SHOP_PROMPTS)
    with Studio(tiny_settings(prompt_translation_model=str(marian), language="es")) as st:
        capfd.readouterr()
        long = "zapatillas rojas sobre arena de playa al atardecer " + "con descuento " * 40
        job = st.generate_images(prompt=long, placements=["1:1"], seed=4)
        done = st.wait_job(job.id, 300)
        assert done.state.value == "completed", done.error
        sent = done.result["prompts"]["1:1"]
        # through the translator (the random-weight stand-in's words, not the prompt's)
        assert not sent.startswith("zapatillas rojas sobre arena")
        png = Image.open(st.assets.file_path(st.get_asset(done.result_asset_ids[0])))
        assert json.loads(png.text["enfoads"])["enhanced_prompt"] == sent
        english = st.generate_images(prompt="red sneakers on a beach", placements=["1:1"])
        assert st.wait_job(english.id, 300).result["prompts"]["1:1"] == "red sneakers on a beach"
    err = capfd.readouterr().err
    assert "truncated" not in err and "Token indices" not in err, err[-2000:]
