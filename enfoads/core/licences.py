"""Whether a file the studio made is clear for commercial use, from the models that touched it.

Each asset records the models that made it (``model_ids``) and the assets it was made from
(``parents``). Its status is the strictest of its own models' and its parents': ``False`` when
any model's licence forbids commercial use of what it makes (InsightFace's detection and swap
models), ``None`` when one is not verified (most Piper voices: their data sets' terms are on
each voice's card), ``True`` otherwise (uploads included: no model touched them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# (model id prefix, licence, whether what it makes may be used commercially), first match wins.
RULES: tuple[tuple[str, str, bool | None], ...] = (
    ("insightface/", "InsightFace: non-commercial research use only", False),
    ("stabilityai/stable-diffusion-xl", "CreativeML Open RAIL++-M", True),
    ("ByteDance/SDXL-Lightning", "CreativeML Open RAIL++-M", True),
    ("madebyollin/sdxl-vae-fp16-fix", "MIT", True),
    ("Helsinki-NLP/", "Apache-2.0", True),
    ("faster-whisper/", "MIT", True),
    ("KwaiVGI/LivePortrait", "MIT", True),
    ("TMElyralab/MuseTalk", "MIT (weights: any use, commercial included)", True),
    ("stabilityai/sd-vae-ft-mse", "MIT", True),
    ("openai/whisper-", "Apache-2.0", True),
    ("scikit-image/", "BSD-3-Clause", True),
    ("enfoads/", "the studio's own code", True),
    ("espeak-ng", "GPL-3.0 (its speech is free to use)", True),
)
UNKNOWN = "not verified: see the model's card"
# Exact model ids whose licence a capability has checked (a Piper voice whose package states
# it), declared by that capability as it loads (``declare``).
_DECLARED: dict[str, tuple[str, bool | None]] = {}


def declare(model_id: str, licence: str, commercial: bool | None) -> None:
    _DECLARED[model_id] = (licence, commercial)


def model_licence(model_id: str) -> tuple[str, bool | None]:
    """A model id's licence and whether its output may be used commercially."""
    if model_id in _DECLARED:
        return _DECLARED[model_id]
    if model_id.startswith("piper/"):  # most voices: their data sets' terms, on each card
        return UNKNOWN, None
    for prefix, licence, commercial in RULES:
        if model_id.startswith(prefix):
            return licence, commercial
    return UNKNOWN, None


def strictest(statuses: Iterable[bool | None]) -> bool | None:
    """False over None over True."""
    seen = list(statuses)
    if False in seen:
        return False
    return None if None in seen else True


def status(model_ids: Iterable[str], parents: Iterable[bool | None] = ()) -> dict[str, Any]:
    """``commercial_use`` and ``licences`` (each model with its licence) of a new asset."""
    licences = []
    for model_id in dict.fromkeys(model_ids):
        licence, commercial = model_licence(model_id)
        licences.append({"model": model_id, "licence": licence, "commercial_use": commercial})
    own = [row["commercial_use"] for row in licences]
    return {"commercial_use": strictest([*own, *parents]), "licences": licences}
