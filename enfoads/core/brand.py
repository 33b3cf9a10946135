"""The brand defaults every surface starts from (one home: the render's request model, the
brand kit, the panels): the end card's background and the karaoke highlight; and the brand
kit as the vault holds it."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

BRAND_COLOUR = "#111111"  # the end card's background
HIGHLIGHT_COLOUR = "#FFD400"  # the word being said, in karaoke subtitles
TEXT_COLOUR = "#FFFFFF"
DEFAULT_COLOURS = (BRAND_COLOUR, HIGHLIGHT_COLOUR)  # a new brand kit's colours


def load_kit(assets: Any) -> dict[str, Any]:
    """The current brand kit (logo asset, colours, font asset, call to action) from the vault
    (``assets``: the AssetStore), or the defaults; an unreadable kit never breaks the studio,
    and an asset deleted since is left out."""
    page = assets.list(kind="brand_kit", limit=1)
    kit: dict[str, Any] = {
        "logo_asset_id": None,
        "colours": list(DEFAULT_COLOURS),
        "font_asset_id": None,
        "cta": "",
    }
    if page.items:
        try:
            saved = json.loads(assets.read_bytes(page.items[0]).decode("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("brand kit %s unreadable (%s): defaults used", page.items[0].id, exc)
            saved = {}
        if isinstance(saved, dict):
            kit.update({k: v for k, v in saved.items() if k in kit})
    for key in ("logo_asset_id", "font_asset_id"):
        if kit[key] and not assets.exists(kit[key]):
            kit[key] = None
    return kit
