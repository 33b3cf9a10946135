"""The magic prompt: turns a marketer's short idea into a prompt SDXL renders well as an ad.

SDXL's text encoders were trained on English captions and read at most 77 CLIP tokens, so:

1. Spanish is translated to English first (``translate.py``: MarianMT, downloaded on first
   use; a direct call never waits for that download).
2. Rules add what an ad needs (product emphasis, the style's look, lighting, a setting, the
   placement's framing with room for a headline, brand colours in words), never against the
   subject: scene and light words in the prompt (Spanish or English) win over the style's
   defaults ("en la playa" gets no "seamless background"; "luz natural" no "softbox").
3. The result fits CLIP's 77 tokens, counted with SDXL's own tokenizer when it is on disk
   (else a conservative estimate): the least important phrases go first, the subject last.

Optionally a small instruct LLM expands the idea first; when it cannot be loaded the rules
answer alone, with a notice, never an error.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enfoads.core.capability import PREPARE_JOB, Capability, ModelSpec, Services
from enfoads.core.errors import EnfoadsError, InvalidInput
from enfoads.core.i18n import Reason, t
from enfoads.core.pipelines.base import (
    ModelFile,
    ModelWithTokenizer,
    hub_cache,
    hub_kwargs,
    hub_reachable,
    in_cache,
    is_local,
    local_weights_bytes,
    quiet_model_libraries,
)
from enfoads.core.validation import check_text

if TYPE_CHECKING:
    from enfoads.core.pipelines.translate import Translator
    from enfoads.core.settings import Settings

log = logging.getLogger(__name__)

MODEL_NAME = "prompt-llm"
MODEL_TABLE = {
    "qwen2.5-0.5b-instruct": ModelFile(
        "qwen2.5-0.5b-instruct",
        "Qwen/Qwen2.5-0.5B-Instruct",
        None,
        "main",
        "Apache-2.0",
        988_000_000,
        note="optional; expands the idea",
    ),
}
CLIP_MAX_TOKENS = 77  # with the start and end tokens: 75 for the text
CLIP_VOCAB = 49408  # SDXL's two tokenizers are CLIP's BPE


@dataclass(frozen=True)
class StylePreset:
    label_es: str
    label_en: str
    look: str = ""  # English: SDXL's text encoders were trained on English captions
    lighting: str = ""  # dropped when the prompt names its own light
    setting: str = ""  # dropped when the prompt names its own place

    def label(self, lang: str) -> str:
        return self.label_es if lang == "es" else self.label_en

    @property
    def words(self) -> str:
        return ", ".join(p for p in (self.look, self.lighting, self.setting) if p)


STYLES: dict[str, StylePreset] = {
    "none": StylePreset("Sin estilo", "No style"),
    "product": StylePreset(
        "Foto de producto",
        "Product photo",
        "professional product photography, crisp reflections, 100mm macro lens",
        "softbox lighting",
        "clean seamless background",
    ),
    "lifestyle": StylePreset(
        "Estilo de vida",
        "Lifestyle",
        "lifestyle photography, candid moment, warm tones, 35mm lens",
        "natural window light",
        "authentic everyday setting",
    ),
    "flat": StylePreset(
        "Ilustración plana",
        "Flat illustration",
        "flat vector illustration, bold simple shapes, limited colour palette, "
        "clean lines, no gradients",
    ),
    "cinematic": StylePreset(
        "Cinematográfico",
        "Cinematic",
        "cinematic still, anamorphic lens, film grain, rich contrast, teal and orange grade",
        "dramatic rim lighting",
    ),
    "minimal": StylePreset(
        "Estudio minimalista",
        "Minimal studio",
        "minimalist, generous negative space, elegant and calm",
        "soft diffused light",
        "single pastel studio backdrop",
    ),
}

AD_BASE = "high-end advertising image, sharp focus on the subject, professional colour grading"
COMPOSITION = {
    "9:16": "vertical composition, subject in the lower two thirds, clear empty space at the top "
    "for headline text",
    "16:9": "wide composition, subject on the right third, clear empty space on the left for "
    "headline text",
    "1:1": "centered composition with clear empty space around the subject for headline text",
    "4:5": "portrait composition, subject slightly low in frame, clear space at the top for text",
}
DEFAULT_LIGHTING = "soft studio lighting, gentle shadows"
# The light for a place the prompt names (a beach, a street): a studio light would contradict
# it as much as a studio backdrop would.
SCENE_LIGHTING = "natural light, soft shadows"
STUDIO_LIGHT_WORDS = ("studio", "softbox")

_ES_WORDS = set(
    "el la los las un una unos unas de del y con para por en que es son al "
    "su sus mi muy más mas sobre fondo foto imagen anuncio producto marca "
    "café zapatillas mujer hombre niño niña playa verano nuevo nueva".split()
)
_EN_WORDS = set(
    "the a an of and with for on in is are to at by its my very more over "
    "background photo image ad product brand coffee sneakers woman man "
    "child beach summer new".split()
)
_HEX = re.compile(r"^#?[0-9a-fA-F]{6}$")


def detect_language(text: str) -> str:
    """``es`` or ``en`` from stop words and Spanish letters; English when nothing tells."""
    lowered = text.lower()
    words = re.findall(r"[a-záéíóúñü]+", lowered)
    es = sum(w in _ES_WORDS for w in words) + 2 * len(re.findall(r"[ñ¿¡]", lowered))
    es += sum(1 for ch in lowered if ch in "áéíóú")
    en = sum(w in _EN_WORDS for w in words)
    return "es" if es > en else "en"


@dataclass(frozen=True)
class PromptResult:
    prompt: str
    enhanced: str
    language: str
    engine: str  # "rules" or "llm"
    additions: tuple[str, ...] = ()
    notices: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "enhanced_prompt": self.enhanced,
            "language": self.language,
            "engine": self.engine,
            "additions": list(self.additions),
            "notices": list(self.notices),
        }


def plain(text: str) -> str:
    """Lower case without accents: "Cafetería" and "cafeteria" read the same."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# A place named in the prompt (Spanish or English): the style's studio setting would contradict it.
SCENE_WORDS = frozenset(
    """
playa arena mar oceano costa orilla piscina lago rio montana montanas bosque selva jardin parque
campo pradera desierto nieve calle ciudad urbano terraza balcon cocina bano dormitorio salon
habitacion oficina restaurante cafeteria bar tienda mercado gimnasio estadio exterior exteriores
aire libre atardecer amanecer noche cielo interior mesa escritorio estanteria
beach sand sea ocean coast shore pool lake river mountain mountains forest jungle garden park
field meadow desert snow street city urban terrace balcony kitchen bathroom bedroom living room
office restaurant cafe bar shop store market gym stadium outdoor outdoors outside sunset sunrise
night sky indoors table desk shelf countertop
""".split()
)
# Light named in the prompt: the style's studio light would contradict it.
LIGHT_WORDS = frozenset(
    """
luz iluminacion sol soleado atardecer amanecer noche neon velas vela contraluz sombra sombras
dorada
light lighting lit sun sunny sunlight sunset sunrise night neon candle candles candlelight
backlit backlight shadow shadows golden hour glow
""".split()
)

# Colour names CLIP knows, for brand colours given as hex (CLIP does not read "#E63946").
NAMED_COLOURS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "light grey": (200, 200, 200),
    "grey": (128, 128, 128),
    "charcoal": (54, 69, 79),
    "red": (220, 30, 30),
    "crimson": (190, 20, 60),
    "burgundy": (128, 0, 32),
    "coral": (255, 110, 90),
    "orange": (255, 130, 0),
    "peach": (255, 200, 160),
    "gold": (212, 175, 55),
    "yellow": (255, 220, 0),
    "cream": (255, 250, 220),
    "beige": (225, 205, 170),
    "brown": (120, 70, 30),
    "sandy brown": (244, 164, 96),
    "tan": (210, 180, 140),
    "olive green": (110, 120, 30),
    "lime green": (150, 220, 40),
    "green": (30, 150, 60),
    "emerald green": (0, 155, 100),
    "mint green": (160, 230, 190),
    "teal": (0, 128, 128),
    "turquoise": (60, 210, 200),
    "sky blue": (120, 190, 240),
    "blue": (30, 80, 220),
    "navy blue": (15, 30, 90),
    "royal blue": (65, 105, 225),
    "purple": (120, 40, 160),
    "lavender": (190, 170, 230),
    "magenta": (220, 30, 160),
    "pink": (255, 150, 190),
    "hot pink": (255, 60, 150),
}


def colour_name(hex_colour: str) -> str:
    """The nearest named colour (a redmean-weighted RGB distance, close to how eyes compare)."""
    value = hex_colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))

    def distance(rgb: tuple[int, int, int]) -> float:
        mean = (r + rgb[0]) / 2
        dr, dg, db = r - rgb[0], g - rgb[1], b - rgb[2]
        return (2 + mean / 256) * dr * dr + 4 * dg * dg + (2 + (255 - mean) / 256) * db * db

    return min(NAMED_COLOURS, key=lambda name: distance(NAMED_COLOURS[name]))


def mentions(texts: tuple[str, ...], words: frozenset[str]) -> bool:
    found = set()
    for text in texts:
        tokens = re.findall(r"[a-z]+", plain(text))
        found.update(tokens)
        found.update(" ".join(pair) for pair in zip(tokens, tokens[1:]))
    return bool(found & words)


def _dedupe(parts: list[str], existing: str) -> list[str]:
    """Drop additions whose words the prompt already has (no "studio lighting" twice)."""
    have = unicodedata.normalize("NFKC", existing.lower())
    return [p for p in parts if p and p.split(",")[0].strip().lower() not in have]


@dataclass(frozen=True)
class Phrase:
    text: str
    drop: int  # the order in which phrases go when the prompt is too long (1 first)


def rule_phrases(
    text: str,
    *,
    style: str = "none",
    placement: str | None = None,
    brand_colors: tuple[str, ...] = (),
    product: str | None = None,
    original: str = "",
) -> list[Phrase]:
    """What the rules add to ``text`` (English), in prompt order. ``original`` is the prompt as
    typed (Spanish, before translation): its scene and light words count too."""
    preset = STYLES[style]
    said = (text, original)
    phrases = []
    if product:
        phrases.append(Phrase(f"hero shot of the {product.strip()}, product in sharp focus", 5))
    if preset.look:
        phrases.append(Phrase(preset.look, 4))
    scene = mentions(said, SCENE_WORDS)
    if not mentions(said, LIGHT_WORDS):
        lighting = preset.lighting or DEFAULT_LIGHTING
        indoor = any(word in lighting for word in STUDIO_LIGHT_WORDS)
        phrases.append(Phrase(SCENE_LIGHTING if scene and indoor else lighting, 3))
    if preset.setting and not scene:
        phrases.append(Phrase(preset.setting, 2))
    phrases.append(Phrase(COMPOSITION.get(placement or "1:1", COMPOSITION["1:1"]), 7))
    if brand_colors:
        names = list(dict.fromkeys(colour_name(c) for c in brand_colors))
        phrases.append(Phrase(f"{' and '.join(names)} brand colour accents", 6))
    phrases.append(Phrase(AD_BASE, 1))
    keep = set(_dedupe([p.text for p in phrases], " ".join(said)))
    return [p for p in phrases if p.text in keep]


def _rule_words() -> frozenset[str]:
    """The words of the rules' own phrases that CLIP's BPE keeps whole (checked by a test
    against the real tokenizer): common English words, one token each."""
    texts = [f"{p.look} {p.lighting} {p.setting}" for p in STYLES.values()]
    texts += [
        *COMPOSITION.values(),
        AD_BASE,
        DEFAULT_LIGHTING,
        SCENE_LIGHTING,
        *NAMED_COLOURS,
        "hero shot of the product in sharp focus brand colour accents and a an",
    ]
    words = {w for text in texts for w in re.findall(r"[a-z]+", text.lower())}
    return frozenset(words - {"anamorphic", "diffused", "gradients", "softbox"})


def estimate_tokens(text: str) -> int:
    """CLIP tokens of ``text`` without its tokenizer: the rules' own words one each, any other
    word one token per 3 letters (CLIP's BPE keeps common English words whole but splits
    Spanish and rare words), each punctuation mark one. On the tests' shop prompts, Spanish
    and English, it never undercounts the real tokenizer (an undercount would let SDXL cut the
    prompt's end). It serves only until SDXL's tokenizer is on disk: a job counts exactly."""
    count = 0
    for piece in re.findall(r"\w+|[^\w\s]", text):
        if piece.lower() in RULE_WORDS:
            count += 1
        else:
            count += math.ceil(len(piece) / 3) if piece[0].isalnum() else 1
    return count


RULE_WORDS = _rule_words()
FRAMING = 7  # the placement's framing: kept while the subject can shrink instead


def fit_tokens(subject: str, phrases: list[Phrase], count: Any, limit: int) -> tuple[str, bool]:
    """``subject, phrase, …`` within ``limit`` tokens: phrases go in their drop order, then the
    subject loses its last words (it keeps room for the placement's framing), and last the
    framing itself. Returns the text and whether anything was left out."""
    kept = list(phrases)
    words = subject.split()

    def text() -> str:
        return ", ".join([" ".join(words).rstrip(" ,.")] + [p.text for p in kept])

    trimmed = False
    while count(text()) > limit:
        droppable = [p for p in kept if p.drop < FRAMING]
        if droppable:
            kept.remove(min(droppable, key=lambda p: p.drop))
        elif len(words) > 1:
            words.pop()
        elif kept:
            kept.pop()
        else:
            break
        trimmed = True
    return text(), trimmed


class ClipTokenCounter:
    """Counts tokens with SDXL's own CLIP tokenizer when its files are on disk (the base
    model's ``tokenizer/`` folder, local or in the hub cache), else ``estimate_tokens``."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def tokenizer(self, settings: Settings) -> Any | None:
        folder = self._folder(settings)
        if folder is None:
            return None
        key = str(folder)
        if key not in self._loaded:
            try:
                from transformers import CLIPTokenizer

                quiet_model_libraries()
                tok = CLIPTokenizer.from_pretrained(folder)
                # A tokenizer of another size is not SDXL's (a test stand-in): estimate.
                self._loaded[key] = tok if len(tok) == CLIP_VOCAB else None
            except Exception as exc:  # noqa: BLE001 - a broken folder: estimate instead
                log.warning("CLIP tokenizer in %s unreadable (%s): estimating", folder, exc)
                self._loaded[key] = None
        return self._loaded[key]

    @staticmethod
    def _folder(settings: Settings) -> Path | None:
        repo = settings.image_base_model
        if is_local(repo):
            folder = Path(repo).expanduser() / "tokenizer"
            return folder if (folder / "vocab.json").is_file() else None
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        cache = hub_cache(settings.models_dir)
        vocab = try_to_load_from_cache(repo, "tokenizer/vocab.json", cache_dir=cache)
        merges = try_to_load_from_cache(repo, "tokenizer/merges.txt", cache_dir=cache)
        return Path(vocab).parent if isinstance(vocab, str) and isinstance(merges, str) else None

    def counter(self, settings: Settings) -> Any:
        """``count(text)``: the text's tokens, without the start and end tokens."""
        tok = self.tokenizer(settings)
        if tok is None:
            return estimate_tokens
        return lambda text: len(tok(text, truncation=False, verbose=False).input_ids) - 2


class PromptEnhancer(Capability):
    """Translation (Spanish), the optional LLM, then the rules; the result fits CLIP."""

    name = "prompt"
    needs = ("translate",)

    def __init__(self, services: Services):
        super().__init__(services)
        self.tokens = ClipTokenCounter()
        self.translator: Translator = services.need("translate")

    def models(self) -> list[ModelSpec]:
        repo = self.settings.prompt_llm_model
        if not repo:
            return []
        models_dir = self.settings.models_dir
        return [
            ModelSpec(
                MODEL_NAME,
                self.name,
                repo,
                "see the model card",
                1_000_000_000,
                lambda: in_cache(repo, "config.json", models_dir),
                commercial_use=None,
                load=lambda: load_llm(repo, models_dir, self.services.models.device),
                memory_bytes=lambda: (
                    local_weights_bytes(repo) or MODEL_TABLE["qwen2.5-0.5b-instruct"].size_bytes
                ),
            )
        ]

    def enhance(
        self,
        prompt: str,
        *,
        style: str = "none",
        placement: str | None = None,
        brand_colors: tuple[str, ...] | list[str] = (),
        product: str | None = None,
        use_llm: bool | None = None,
        download: bool = False,
    ) -> PromptResult:
        """``download``: a translation model not on disk is fetched now (inside a job); else
        the rules answer at once with a notice while a job fetches it."""
        text = check_text(prompt or "", "prompt", limit=self.settings.max_prompt_chars).strip()
        if not text:
            raise InvalidInput("error.empty", field="prompt")
        for name, value in (
            ("product", product or ""),
            ("placement", placement or ""),
            *(("brand_colors", c) for c in brand_colors),
        ):
            check_text(value, name, limit=200)
        if style not in STYLES:
            raise InvalidInput(
                "error.unknown_choice", field="style", value=style, choices=", ".join(STYLES)
            )
        colors = tuple(brand_colors)
        for color in colors:
            if not _HEX.match(color):
                raise InvalidInput(
                    "error.invalid",
                    field="brand_colors",
                    reason=Reason("reason.not_hex", value=color),
                )
        lang = self.settings.language
        language = detect_language(text)
        notices: list[str] = []
        engine = "rules"
        base = text
        if language == "es":
            base, engine = self._translate(text, download, notices)
        model = self.settings.prompt_llm_model
        if use_llm is None:
            use_llm = bool(model)
        if use_llm:
            try:
                base = self._expand_with_llm(base)
                engine = "llm"
            except EnfoadsError as exc:
                log.warning("prompt LLM unavailable, using the rules: %s", exc)
                notices.append(
                    t("notice.llm_fallback", lang, model=model or "-", reason=exc.message(lang))
                )
        phrases = rule_phrases(
            base,
            style=style,
            placement=placement,
            brand_colors=colors,
            product=product,
            original=text,
        )
        count = self.tokens.counter(self.settings)
        enhanced, trimmed = fit_tokens(base, phrases, count, CLIP_MAX_TOKENS - 2)
        if trimmed:
            notices.append(t("notice.prompt_trimmed", lang, limit=CLIP_MAX_TOKENS))
        additions = tuple(p.text for p in phrases if p.text in enhanced)
        return PromptResult(text, enhanced, language, engine, additions, tuple(notices))

    def watching_download(self, ctx: Any) -> Any:
        """Around a job's prompt work: a first use's download of the translator (what this
        capability needs) is counted in the job's stage."""
        from enfoads.core.pipelines.translate import MODEL

        return ctx.watching_downloads(self.settings.models_dir, MODEL.repo, MODEL.size_bytes)

    def translate(self, text: str, notices: list[str]) -> str:
        """English for a prompt typed in Spanish (inside a job: the translator is fetched when
        missing), the prompt as it is otherwise; why it stayed Spanish goes to ``notices``.
        SDXL's text encoders read English only, so a raw prompt passes here too."""
        if detect_language(text) != "es":
            return text
        return self._translate(text, True, notices)[0]

    def _translate(self, text: str, download: bool, notices: list[str]) -> tuple[str, str]:
        """English for a Spanish prompt, and the engine that made it; the prompt itself, with
        a notice, when no translation can be had now."""
        lang = self.settings.language
        translator = self.translator
        if not translator.enabled():
            notices.append(t("notice.spanish_kept", lang))
            return text, "rules"
        if not translator.on_disk() and not hub_reachable():
            notices.append(t("notice.translator_offline", lang))
            return text, "rules"
        if not download and not translator.on_disk():
            notices.append(t("notice.translator_downloading", lang))
            self._fetch_translator()
            return text, "rules"
        try:
            english = translator.translate(text)
        except EnfoadsError as exc:
            log.warning("translation unavailable: %s", exc)
            notices.append(t("notice.translation_failed", lang, reason=exc.message(lang)))
            return text, "rules"
        if not english:
            return text, "rules"
        return english, "translation"

    def _fetch_translator(self) -> None:
        """A job downloads the translation model (once: not while one is queued or running)."""
        from enfoads.core.pipelines.translate import MODEL_NAME as TRANSLATOR

        try:
            active = [
                j
                for state in ("queued", "running")
                for j in self.services.jobs.list(state=state, kind=PREPARE_JOB)
            ]
            if not any(j.params.get("model") == TRANSLATOR for j in active):
                self.services.jobs.submit(PREPARE_JOB, {"model": TRANSLATOR})
        except Exception:  # the magic prompt answers anyway
            log.exception("could not start the translation model's download")

    # -- the optional LLM ----------------------------------------------------------------
    SYSTEM = (
        "You write prompts for an image generator that makes advertising images. "
        "Rewrite the user's idea as one English prompt of at most 60 words: translate it "
        "if it is not English, name the subject, setting, mood and lighting. "
        "Answer with the prompt only."
    )

    def _expand_with_llm(self, text: str) -> str:
        from enfoads.core.errors import ModelUnavailable

        reply = self.chat(self.SYSTEM, text, max_new_tokens=96)
        cleaned = " ".join(reply.replace('"', " ").split())[: self.settings.max_prompt_chars]
        if not cleaned:
            raise ModelUnavailable(MODEL_NAME, "the model returned an empty prompt")
        return cleaned

    def chat(self, system: str, user: str, max_new_tokens: int = 96) -> str:
        """One greedy answer of the optional LLM (``prompt_llm_model``), owned by the model
        manager; ``ModelUnavailable`` when none is set or it cannot be loaded."""
        from enfoads.core.errors import ModelUnavailable

        if not self.settings.prompt_llm_model:
            raise ModelUnavailable(MODEL_NAME, "ENFOADS_PROMPT_LLM_MODEL is not set")
        with self.services.models.use(MODEL_NAME) as (model, tokenizer):
            import torch

            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ]
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            inputs = {k: v.to(model.device) for k, v in inputs.items()}
            with torch.inference_mode():
                out = model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                )
            return tokenizer.decode(
                out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )


def load_llm(repo: str, models_dir: Path, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) on CPU; the VRAM manager moves the model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = hub_kwargs(repo, MODEL_TABLE["qwen2.5-0.5b-instruct"].revision, models_dir)
    dtype = torch.float16 if device == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(repo, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            repo, dtype=dtype, use_safetensors=True, **kwargs
        )
    except Exception as exc:  # transformers raises many kinds
        from enfoads.core.errors import ModelUnavailable

        raise ModelUnavailable(repo, f"{type(exc).__name__}: {exc}"[:300]) from exc
    model.eval()
    return ModelWithTokenizer(model, tokenizer)
