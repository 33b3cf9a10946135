"""Spanish to English for SDXL's text encoders (trained on English captions): MarianMT.

``Helsinki-NLP/opus-mt-es-en`` (Apache-2.0, ~300 MB, 77 M parameters: about 0.1 s a prompt on
a CPU) is downloaded into the data dir on first use, like every model, and owned by the VRAM
manager. The magic prompt calls ``translate`` when the prompt reads as Spanish; a generation job
may download it, a direct call (``POST /magic-prompt``) never waits for a download: it answers
with the rules and a notice while a job fetches the model.
"""

from __future__ import annotations

import logging
from typing import Any

from enfoads.core.capability import Capability, ModelSpec
from enfoads.core.errors import ModelUnavailable
from enfoads.core.pipelines.base import (
    ModelFile,
    ModelWithTokenizer,
    hub_kwargs,
    in_cache,
    local_weights_bytes,
    quiet_model_libraries,
)

log = logging.getLogger(__name__)

MODEL_NAME = "translator"
MODEL = ModelFile(
    "opus-mt-es-en",
    "Helsinki-NLP/opus-mt-es-en",
    None,
    "main",
    "Apache-2.0",
    312_000_000,
    note="Spanish → English for the image prompt",
)


def load_marian(repo: str, models_dir: Any) -> ModelWithTokenizer:
    """MarianMT and its SentencePiece tokenizer, on CPU (safetensors preferred; an older
    ``pytorch_model.bin`` is read by transformers with ``weights_only=True``)."""
    from transformers import AutoTokenizer, MarianMTModel

    quiet_model_libraries()  # "pip install sacremoses": only for its detokenizer
    kwargs = hub_kwargs(repo, MODEL.revision, models_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(repo, **kwargs)
        model = MarianMTModel.from_pretrained(repo, **kwargs)
    except Exception as exc:  # transformers raises many kinds
        raise ModelUnavailable(repo, f"{type(exc).__name__}: {exc}"[:300]) from exc
    return ModelWithTokenizer(model.eval(), tokenizer)


class Translator(Capability):
    """Spanish → English with the model of ``prompt_translation_model`` (empty: off)."""

    name = "translate"

    @property
    def repo(self) -> str:
        return self.settings.prompt_translation_model

    def enabled(self) -> bool:
        return bool(self.repo)

    def on_disk(self) -> bool:
        return self.enabled() and in_cache(self.repo, "config.json", self.settings.models_dir)

    def models(self) -> list[ModelSpec]:
        if not self.enabled():
            return []
        repo, models_dir = self.repo, self.settings.models_dir
        ours = repo == MODEL.repo
        return [
            ModelSpec(
                MODEL_NAME,
                self.name,
                repo,
                MODEL.licence if ours else "see the model card",
                MODEL.size_bytes,
                self.on_disk,
                commercial_use=True if ours else None,
                load=lambda: load_marian(repo, models_dir),
                # measured when first loaded, not on every inventory listing
                memory_bytes=lambda: local_weights_bytes(repo) or MODEL.size_bytes,
            )
        ]

    def translate(self, text: str) -> str:
        """One prompt, greedy (beam search buys nothing on a one-line prompt here)."""
        import torch

        with self.services.models.use(MODEL_NAME) as (model, tokenizer):
            batch = tokenizer([text], return_tensors="pt", truncation=True, max_length=256)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            # English runs about as long as the Spanish: a bound keeps a bad decode short.
            limit = min(128, 2 * int(batch["input_ids"].shape[1]) + 8)
            with torch.inference_mode():
                out = model.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=limit)
            english = tokenizer.decode(out[0], skip_special_tokens=True)
        return " ".join(english.split())
