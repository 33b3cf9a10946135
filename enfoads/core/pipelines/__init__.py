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
    "avatar:AvatarCapability",
    "video:VideoPipeline",
)


def capability_classes() -> list[type[Capability]]:
    classes = []
    for entry in CAPABILITIES:
        module, name = entry.split(":")
        classes.append(getattr(importlib.import_module(f"enfoads.core.pipelines.{module}"), name))
    return classes


def register_all(capabilities: Capabilities) -> None:
    for cls in capability_classes():
        capabilities.add(cls)
