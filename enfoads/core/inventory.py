"""Which models the studio uses, whether each is on disk, and the job that fetches one.

The inventory is a loop over the models the capabilities declare (``ModelSpec``): the Home and
Settings panels, ``GET /api/models`` and ``enfoads info`` show it, so a studio opened without
network says plainly which models are missing instead of failing at the first click.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field

from enfoads.core.capability import PREPARE_JOB, JobSpec
from enfoads.core.errors import InvalidInput
from enfoads.core.jobs import JobContext, JobResult
from enfoads.core.validation import RequestModel

if TYPE_CHECKING:
    from enfoads.core.capability import Capabilities
    from enfoads.core.settings import Settings
    from enfoads.core.vram import ModelManager

log = logging.getLogger(__name__)


class PrepareModelRequest(RequestModel):
    model: str = Field(description="an inventory key (GET /api/models)")


def missing_models(studio: Any) -> list[dict[str, Any]]:
    """The models not on disk (see ``missing_from``), for an engine or an attached studio."""
    return missing_from(studio.model_inventory(), studio.settings.voice_default)


def missing_from(rows: list[dict[str, Any]], default_voice: str = "") -> list[dict[str, Any]]:
    """The rows not on disk, optional models aside (the classic animator stands in for
    LivePortrait). Of the voices, the one the Video Studio preselects (``default_voice``) is
    missing when it is not on disk, whatever other voice is: a render with it would fail; a
    voice the user never picked is no missing model."""
    return [
        r
        for r in rows
        if not r["on_disk"]
        and not r.get("optional")
        and (r["capability"] != "voice" or r["key"] == f"voice:{default_voice}")
    ]


def model_label(row: dict[str, Any], lang: str) -> str:
    """A model as people know it, in ``lang``: what it does, then its name ("Voz: Claude
    (México)", "Imágenes: SDXL-Lightning…"), never an inventory key alone."""
    from enfoads.core.i18n import CATALOG, t

    if row["key"].startswith("voice:"):
        from enfoads.core.pipelines.voice import voice_name

        return t("model.voice", lang, name=voice_name(row["key"].removeprefix("voice:"), lang))
    key = f"capability.{row['capability']}"
    what = t(key, lang) if key in CATALOG else row["capability"]
    return f"{what}: {row['model']}"


def prepare_job(
    capabilities: Capabilities, settings: Callable[[], Settings], models: ModelManager
) -> JobSpec:
    """The ``prepare_model`` job: download (and load once, to check) one declared model."""

    def check(request: PrepareModelRequest) -> PrepareModelRequest:
        if capabilities.model(request.model) is None:
            keys = [m.key for m in capabilities.models()]
            raise InvalidInput(
                "error.unknown_choice",
                field="model",
                value=request.model[:80],
                choices=", ".join(keys),
            )
        return request

    def run(ctx: JobContext, request: PrepareModelRequest) -> JobResult:
        spec = capabilities.model(check(request).model)
        ctx.progress(5, ctx.t("stage.downloading", model=spec.key))
        with ctx.watching_downloads(settings().models_dir, spec.model, spec.size_bytes):
            if spec.fetch is not None:
                spec.fetch()
            else:
                capabilities.sync_models()
                with models.use(spec.key):
                    pass
        return JobResult((), {"model": spec.key, "on_disk": True})

    return JobSpec(PREPARE_JOB, PrepareModelRequest, run, check=check)


def licence_label(row: dict[str, Any], lang: str) -> str:
    """A model's licence in ``lang``: a non-commercial one says so in words ("InsightFace: solo
    investigación no comercial"), a name such as "MIT" stays as it is."""
    from enfoads.core.i18n import t
    from enfoads.core.pipelines.voice import UNVERIFIED

    text = row.get("licence") or ""
    if text == UNVERIFIED:
        return t("ui.licence_unverified", lang)
    if row.get("commercial_use") is False:
        return t("licence.non_commercial", lang, who=text.split(":")[0].strip() or row["model"])
    if text.lower() in ("see the model card", "check the model card", ""):
        return t("licence.see_card", lang)
    return text
