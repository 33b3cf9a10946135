"""The magic prompt: turns a marketer's short idea into a prompt SDXL renders well as an ad.

Rules first: deterministic, in milliseconds, written for ads (product emphasis, lighting, lens,
composition that leaves room for a headline, brand colours, style words, the placement's
framing). Optionally a small instruct LLM from the hub translates Spanish to English and
expands the idea before the rules; when it cannot be loaded the rules answer alone, with a
notice, never an error.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from enfoads.core.validation import check_text
from enfoads.core.errors import EnfoadsError, InvalidInput
from enfoads.core.i18n import t
from enfoads.core.pipelines.base import ModelFile, hub_kwargs, local_weights_bytes

if TYPE_CHECKING:
    from enfoads.core.settings import Settings
    from enfoads.core.studio import Studio

log = logging.getLogger(__name__)

MODEL_NAME = "prompt-llm"
MODEL_TABLE = {
    "qwen2.5-0.5b-instruct": ModelFile(
        "qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct", None, "main", "Apache-2.0",
        988_000_000, note="optional; translates Spanish and expands",
    ),
}

@dataclass(frozen=True)
class StylePreset:
    label_es: str
    label_en: str
    words: str  # English: SDXL's text encoders were trained on English captions

    def label(self, lang: str) -> str:
        return self.label_es if lang == "es" else self.label_en


STYLES: dict[str, StylePreset] = {
    "none": StylePreset("Sin estilo", "No style", ""),
    "product": StylePreset("Foto de producto", "Product photo",
                           "professional product photography, clean seamless background, "
                           "softbox lighting, crisp reflections, 100mm macro lens"),
    "lifestyle": StylePreset("Estilo de vida", "Lifestyle",
                             "lifestyle photography, candid moment, natural window light, "
                             "warm tones, 35mm lens, authentic everyday setting"),
    "flat": StylePreset("Ilustración plana", "Flat illustration",
                        "flat vector illustration, bold simple shapes, limited colour palette, "
                        "clean lines, no gradients"),
    "cinematic": StylePreset("Cinematográfico", "Cinematic",
                             "cinematic still, dramatic rim lighting, anamorphic lens, "
                             "film grain, rich contrast, teal and orange grade"),
    "minimal": StylePreset("Estudio minimalista", "Minimal studio",
                           "minimalist studio set, single pastel backdrop, soft diffused light, "
                           "generous negative space, elegant and calm"),
}  # fmt: skip

AD_BASE = "high-end advertising image, sharp focus on the subject, professional colour grading"
COMPOSITION = {
    "9:16": "vertical composition, subject in the lower two thirds, clear empty space at the top "
            "for headline text",
    "16:9": "wide composition, subject on the right third, clear empty space on the left for "
            "headline text",
    "1:1": "centered composition with clear empty space around the subject for headline text",
    "4:5": "portrait composition, subject slightly low in frame, clear space at the top for text",
}  # fmt: skip
DEFAULT_LIGHTING = "soft studio lighting, gentle shadows"

_ES_WORDS = set("el la los las un una unos unas de del y con para por en que es son al "
                "su sus mi muy más mas sobre fondo foto imagen anuncio producto marca "
                "café zapatillas mujer hombre niño niña playa verano nuevo nueva".split())  # fmt: skip
_EN_WORDS = set("the a an of and with for on in is are to at by its my very more over "
                "background photo image ad product brand coffee sneakers woman man "
                "child beach summer new".split())  # fmt: skip
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
        return {"prompt": self.prompt, "enhanced_prompt": self.enhanced,
                "language": self.language, "engine": self.engine,
                "additions": list(self.additions), "notices": list(self.notices)}  # fmt: skip


def _dedupe(parts: list[str], existing: str) -> list[str]:
    """Drop additions whose words the prompt already has (no "studio lighting" twice)."""
    have = unicodedata.normalize("NFKC", existing.lower())
    return [p for p in parts if p and p.split(",")[0].strip().lower() not in have]


def rule_additions(text: str, *, style: str = "none", placement: str | None = None,
                   brand_colors: tuple[str, ...] = (), product: str | None = None) -> list[str]:  # fmt: skip
    """The words the rules add to ``text``, in the order they are appended."""
    parts = []
    if product:
        parts.append(f"hero shot of the {product.strip()}, product clearly visible and in focus")
    parts.append(AD_BASE)
    style_words = STYLES[style].words
    if style_words:
        parts.append(style_words)
    elif "light" not in text.lower() and "luz" not in text.lower():
        parts.append(DEFAULT_LIGHTING)
    parts.append(COMPOSITION.get(placement or "1:1", COMPOSITION["1:1"]))
    if brand_colors:
        parts.append("brand colour palette " + " and ".join(c.upper() for c in brand_colors))
    return _dedupe(parts, text)


class PromptEnhancer:
    """Rules always; the LLM first when ``prompt_llm_model`` is set and loads."""

    def __init__(self, studio: Studio):
        self.studio = studio

    @property
    def settings(self) -> Settings:
        return self.studio.settings  # live: a language switch reaches the notices

    def enhance(self, prompt: str, *, style: str = "none", placement: str | None = None,
                brand_colors: tuple[str, ...] | list[str] = (), product: str | None = None,
                use_llm: bool | None = None) -> PromptResult:  # fmt: skip
        text = check_text(prompt or "", "prompt", limit=self.settings.max_prompt_chars).strip()
        if not text:
            raise InvalidInput("error.empty", field="prompt")
        for name, value in (("product", product or ""), ("placement", placement or ""),
                            *(("brand_colors", c) for c in brand_colors)):  # fmt: skip
            check_text(value, name, limit=200)
        if style not in STYLES:
            raise InvalidInput("error.unknown_choice", field="style", value=style,
                               choices=", ".join(STYLES))  # fmt: skip
        colors = tuple(brand_colors)
        for color in colors:
            if not _HEX.match(color):
                raise InvalidInput("error.invalid", field="brand_colors",
                                   reason=f"'{color}' is not a #RRGGBB colour")  # fmt: skip
        colors = tuple(c if c.startswith("#") else f"#{c}" for c in colors)
        lang = self.settings.language
        language = detect_language(text)
        notices: list[str] = []
        engine = "rules"
        base = text
        model = self.settings.prompt_llm_model
        if use_llm is None:
            use_llm = bool(model)
        if use_llm:
            try:
                base = self._expand_with_llm(text)
                engine = "llm"
            except EnfoadsError as exc:
                log.warning("prompt LLM unavailable, using the rules: %s", exc)
                notices.append(t("notice.llm_fallback", lang, model=model or "-",
                                 reason=exc.message(lang)))  # fmt: skip
        if engine == "rules" and language == "es":
            notices.append(t("notice.spanish_kept", lang))
        additions = rule_additions(base, style=style, placement=placement,
                                   brand_colors=colors, product=product)  # fmt: skip
        enhanced = ", ".join([base.rstrip(" ,.")] + additions)
        return PromptResult(text, enhanced, language, engine, tuple(additions), tuple(notices))

    # -- the optional LLM ----------------------------------------------------------------
    SYSTEM = ("You write prompts for an image generator that makes advertising images. "
              "Rewrite the user's idea as one English prompt of at most 60 words: translate it "
              "if it is not English, name the subject, setting, mood and lighting. "
              "Answer with the prompt only.")  # fmt: skip

    def _ensure_registered(self) -> None:
        if self.studio.models.is_registered(MODEL_NAME):
            return
        repo = self.settings.prompt_llm_model
        size = local_weights_bytes(repo) or MODEL_TABLE["qwen2.5-0.5b-instruct"].size_bytes
        self.studio.models.register(MODEL_NAME, lambda: load_llm(self.studio, repo), size)

    def _expand_with_llm(self, text: str) -> str:
        from enfoads.core.errors import ModelUnavailable

        if not self.settings.prompt_llm_model:
            raise ModelUnavailable(MODEL_NAME, "ENFOADS_PROMPT_LLM_MODEL is not set")
        self._ensure_registered()
        with self.studio.models.use(MODEL_NAME) as (model, tokenizer):
            import torch

            messages = [{"role": "system", "content": self.SYSTEM},
                        {"role": "user", "content": text}]  # fmt: skip
            inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                   return_tensors="pt", return_dict=True)  # fmt: skip
            inputs = {k: v.to(model.device) for k, v in inputs.items()}
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=96, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id
                                     or tokenizer.eos_token_id)  # fmt: skip
            reply = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:],
                                     skip_special_tokens=True)  # fmt: skip
        cleaned = " ".join(reply.replace('"', " ").split())[: self.settings.max_prompt_chars]
        if not cleaned:
            raise ModelUnavailable(MODEL_NAME, "the model returned an empty prompt")
        return cleaned


def load_llm(studio: Studio, repo: str) -> tuple[Any, Any]:
    """(model, tokenizer) on CPU; the VRAM manager moves the model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = hub_kwargs(repo, MODEL_TABLE["qwen2.5-0.5b-instruct"].revision,
                        studio.settings.models_dir)
    dtype = torch.float16 if studio.models.device == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(repo, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(repo, dtype=dtype, use_safetensors=True,
                                                     **kwargs)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
        from enfoads.core.errors import ModelUnavailable

        raise ModelUnavailable(repo, f"{type(exc).__name__}: {exc}"[:300]) from exc
    model.eval()
    return _LLM(model, tokenizer)


class _LLM(tuple):
    """(model, tokenizer) that the VRAM manager can move and measure like a torch module."""

    def __new__(cls, model: Any, tokenizer: Any) -> _LLM:
        return super().__new__(cls, (model, tokenizer))

    def to(self, device: str) -> _LLM:
        self[0].to(device)
        return self

    @property
    def components(self) -> dict[str, Any]:
        return {"model": self[0]}


def register(studio: Studio) -> None:
    studio.pipelines["prompt"] = PromptEnhancer(studio)
