"""One module per capability, each with one pipeline class and its model table.

Adding a capability is one new module plus one line in ``CAPABILITIES``: its ``register(studio)``
declares the models to the VRAM manager and the job handlers to the queue.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enfoads.core.studio import Studio

CAPABILITIES: tuple[str, ...] = (
    "image", "translate", "prompt", "faceswap", "voice", "subtitles", "avatar", "video",
)


def register_all(studio: Studio) -> None:
    for name in CAPABILITIES:
        importlib.import_module(f"enfoads.core.pipelines.{name}").register(studio)
