"""One module per capability, each with one class that satisfies the contract of
``enfoads.core.capability`` (its models, its jobs with their request models, its options, the
capabilities it needs).

Adding a capability is one new module plus one line in ``CAPABILITIES`` (after the ones it
needs): the registry checks it, builds it with its services, and hands its jobs to the queue and
its models to the model manager and the inventory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enfoads.core.capability import Capabilities, Capability

# module:class, in an order where each comes after what it needs
CAPABILITIES: tuple[str, ...] = (
    "translate:Translator",
    "prompt:PromptEnhancer",
    "image:ImagePipeline",
    "faceswap:FaceSwapPipeline",
    "voice:VoicePipeline",
    "subtitles:SubtitlePipeline",
    "liveportrait:LivePortraitCapability",
    "lipsync:LipSyncCapability",
    "avatar:AvatarCapability",
    "video:VideoPipeline",
    "export:ExportCapability",
    "variants:VariantsCapability",
)


def capability_classes() -> list[type[Capability]]:
    classes = []
    for entry in CAPABILITIES:
        module, name = entry.split(":")
        classes.append(getattr(importlib.import_module(f"enfoads.core.pipelines.{module}"), name))
    return classes


def extra_capability_classes(entries: str) -> list[type[Capability]]:
    """``ENFOADS_EXTRA_CAPABILITIES``: "package.module:Class" entries, comma-separated."""
    from enfoads.core.capability import ContractError

    classes = []
    for entry in filter(None, (e.strip() for e in entries.split(","))):
        module, _, name = entry.partition(":")
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError, ValueError) as exc:
            raise ContractError(f"extra capability {entry!r} cannot be imported: {exc}") from exc
    return classes


def register_all(capabilities: Capabilities, extra: str = "") -> None:
    """The studio's capabilities, then those of ``extra`` (``ENFOADS_EXTRA_CAPABILITIES``)."""
    for cls in capability_classes() + extra_capability_classes(extra):
        capabilities.add(cls)
