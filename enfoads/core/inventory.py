"""Which models the studio uses, whether each is on disk, and the job that fetches one.

The Home and Settings panels and ``enfoads studio`` show this, so a studio opened without
network says plainly which models are missing instead of failing at the first click.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enfoads.core.errors import InvalidInput
from enfoads.core.jobs import JobContext, JobResult
from enfoads.core.pipelines.base import in_cache, is_local

if TYPE_CHECKING:
    from enfoads.core.studio import Studio

log = logging.getLogger(__name__)

PREPARE_JOB = "prepare_model"


def in_hub_cache(studio: Studio, repo: str, filename: str) -> bool:
    """Whether ``repo/filename`` is in the data dir's hub cache (no network)."""
    return in_cache(repo, filename, studio.settings.models_dir)


def model_inventory(studio: Studio) -> list[dict[str, Any]]:
    """One row per model: key, capability, licence, commercial use, size and ``on_disk``."""
    from enfoads.core.pipelines import faceswap, image, subtitles
    from enfoads.core.pipelines.video import VOICE_BYTES

    s = studio.settings
    rows: list[dict[str, Any]] = []
    unet = image.unet_file(s)
    rows.append({"key": image.MODEL_NAME, "capability": "image",
                 "model": f"{s.image_base_model} + {s.image_unet_model}/{unet.filename}",
                 "licence": unet.licence, "commercial_use": True,
                 "size_bytes": unet.size_bytes + image.MODEL_TABLE["sdxl-base"].size_bytes,
                 "on_disk": studio.pipelines["image"].on_disk()})  # fmt: skip
    swap = studio.pipelines["faceswap"]
    swapper_local = Path(s.faceswap_swapper_model).expanduser().is_file() or in_hub_cache(
        studio, s.faceswap_swapper_model, "inswapper_128.onnx")
    rows.append({"key": faceswap.MODEL_NAME, "capability": "faceswap",
                 "model": f"{s.faceswap_analysis_model} + inswapper_128",
                 "licence": faceswap.LICENCE, "commercial_use": False,
                 "size_bytes": swap.estimate_bytes(),
                 "on_disk": swap.analysis_on_disk() and swapper_local})  # fmt: skip
    whisper = s.subtitle_model
    whisper_dir = s.models_dir / "whisper"
    rows.append({"key": subtitles.MODEL_NAME, "capability": "subtitles",
                 "model": f"faster-whisper {Path(whisper).name}", "licence": "MIT",
                 "commercial_use": True, "size_bytes": studio.pipelines["subtitles"].estimate_bytes(),
                 "on_disk": is_local(whisper) or any(whisper_dir.glob(f"*{whisper}*"))})  # fmt: skip
    voice = studio.pipelines["voice"]
    for item in voice.catalogue():
        rows.append({"key": f"voice:{item['key']}", "capability": "voice",
                     "model": f"Piper {item['key']}", "licence": item["licence"],
                     "licence_url": item["model_card_url"], "commercial_use": None,
                     "size_bytes": VOICE_BYTES, "on_disk": item["available"]})  # fmt: skip
    translator = studio.pipelines["translate"]
    if translator.enabled():
        from enfoads.core.pipelines.translate import MODEL, MODEL_NAME

        rows.append({"key": MODEL_NAME, "capability": "prompt", "model": translator.repo,
                     "licence": MODEL.licence if translator.repo == MODEL.repo
                     else "see the model card", "commercial_use": True
                     if translator.repo == MODEL.repo else None,
                     "size_bytes": MODEL.size_bytes, "on_disk": translator.on_disk()})  # fmt: skip
    if s.prompt_llm_model:
        rows.append({"key": "prompt-llm", "capability": "prompt", "model": s.prompt_llm_model,
                     "licence": "see the model card", "commercial_use": None,
                     "size_bytes": 1_000_000_000,
                     "on_disk": in_hub_cache(studio, s.prompt_llm_model, "config.json")})  # fmt: skip
    return rows


def missing_models(studio: Any) -> list[dict[str, Any]]:
    """The models not on disk (see ``missing_from``), for an engine or an attached studio."""
    return missing_from(studio.model_inventory())


def missing_from(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows not on disk, voices aside (one voice is enough, and espeak-ng stands in)."""
    missing = [r for r in rows if not r["on_disk"] and r["capability"] != "voice"]
    if not any(r["on_disk"] for r in rows if r["capability"] == "voice"):
        missing.append({"key": "voice:*", "capability": "voice", "model": "Piper",
                        "on_disk": False, "licence": "", "commercial_use": None, "size_bytes": 0})  # fmt: skip
    return missing


def run_prepare(studio: Studio, ctx: JobContext) -> JobResult:
    """Download (and load once, to check) one model: ``params["model"]`` is an inventory key."""
    key = str(ctx.params.get("model", ""))
    rows = {r["key"]: r for r in model_inventory(studio)}
    if key not in rows:
        raise InvalidInput("error.unknown_choice", field="model", value=key,
                           choices=", ".join(sorted(rows)))  # fmt: skip
    ctx.progress(5, ctx.t("stage.downloading", model=key))
    with ctx.watching_downloads(studio.settings.models_dir, rows[key]["model"], rows[key]["size_bytes"]):
        if key.startswith("voice:"):
            studio.pipelines["voice"].voice_files(key.removeprefix("voice:"))
        else:
            with studio.models.use(key):
                pass
    return JobResult((), {"model": key, "on_disk": True})


def register(studio: Studio) -> None:
    studio.jobs.register(PREPARE_JOB, lambda ctx: run_prepare(studio, ctx))
