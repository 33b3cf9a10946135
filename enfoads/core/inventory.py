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
    return missing_from(studio.model_inventory())


def missing_from(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows not on disk, voices and optional models aside (one voice is enough, and the
    classic animator stands in for LivePortrait)."""
    missing = [
        r for r in rows if not r["on_disk"] and r["capability"] != "voice" and not r.get("optional")
    ]
    if not any(r["on_disk"] for r in rows if r["capability"] == "voice"):
        missing.append(
            {
                "key": "voice:*",
                "capability": "voice",
                "model": "Piper",
                "on_disk": False,
                "licence": "",
                "commercial_use": None,
                "size_bytes": 0,
            }
        )
    return missing


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
