"""A/B variants from one brief: the visuals generated once, the brand layer set in type per
variant, and the ad platforms' results read back into a verdict.

``render_variants`` (``POST /api/briefs``) crosses the brief's factors (1–3 visual concepts ×
2–4 headlines × 1–3 calls to action): each concept is generated once per placement (SDXL, the
same seed), and every variant gets its brand layer drawn by the compositor, never painted by
diffusion: the headline, the price and offer, the call-to-action button and the kit's logo,
in the kit's font and colours, laid out inside the placement's safe zone, each text fitted to
its box (wrapped, shrunk to a minimum size, or refused with the reason before anything is
queued), its contrast measured on the pixels behind it (WCAG 4.5:1 for text: a plate goes
behind it when the picture does not give that). Each variant has a short stable ID
(``7f3a-1B2``: concept 1, headline B, CTA 2) in its file's record and the vault; the brief,
with every variant's copy and files, is stored as a ``brief`` asset.

``propose_copy`` (``POST /api/jobs/propose_copy``) proposes headlines and calls to action for
the user to edit: from Spanish and English templates by tone, or from the optional local LLM
(``prompt_llm_model``) with the templates as its fallback. A brief may cross every level
(the full matrix) or only the ``combinations`` the user kept (a fractional design:
``fraction`` proposes a balanced one where every level of every factor appears).

``import_results`` (``POST /api/briefs/{brief_id}/results``) reads the per-ad CSV exported from Meta Ads
Manager or Google Ads, matches each row to a variant by the ID in the ad's name (or a
``variant`` column), and says per variant and per factor level how likely each is to be the
best (beta-binomial posteriors on CTR and conversion rate, by sampling), with the intervals
drawn as a chart and a plain-language verdict.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from enfoads.core import brand
from enfoads.core.assets import new_asset_id
from enfoads.core.capability import Capability, JobSpec, ModelSpec
from enfoads.core.errors import InvalidInput
from enfoads.core.i18n import Reason
from enfoads.core.jobs import JobContext, JobResult
from enfoads.core.pipelines import compose
from enfoads.core.pipelines import export_presets as presets
from enfoads.core.pipelines.base import ai_png_text
from enfoads.core.pipelines.image import Style
from enfoads.core.provenance import COMPOSITE, TRAINED, Claim
from enfoads.core.validation import RequestModel

log = logging.getLogger(__name__)

BRIEF_JOB, RESULTS_JOB, COPY_JOB = "render_variants", "import_results", "propose_copy"
Tone = Literal["friendly", "premium", "urgent", "playful"]
Placement = Literal["1:1", "9:16", "16:9", "4:5", "2:3", "3:2", "1.91:1"]
# A placement no SDXL size has (Google's and LinkedIn's landscape, 1200×628): its visual is
# the nearest SDXL size's, cover-cropped to the exact ratio before the type is laid out on it,
# so the export only scales it and every layer stays where it was set.
CROPPED: dict[str, tuple[str, tuple[int, int]]] = {"1.91:1": ("16:9", (1344, 704))}
HEADLINE_LETTERS = "ABCD"
TEXT_CONTRAST = 4.5  # WCAG 2 AA for text
DRAWS = 20_000  # posterior samples
DECIDED = 0.95  # a level "wins" past this probability of being the best
MARGIN = 0.06  # the safe margin where a placement has no zone of its own
# Type sizes as a share of the canvas's short side: the largest tried, the smallest allowed.
SIZES = {"headline": (0.095, 0.04), "price": (0.06, 0.032), "cta": (0.055, 0.032)}


class BriefRequest(RequestModel):
    """A brief: the product, its copy to test and its visual concepts; every combination is a
    variant, rendered at every placement."""

    product: str = Field(min_length=1, max_length=80, description="the product's name")
    price: str = Field("", max_length=24, description="as it should read, e.g. 19,90 €")
    offer: str = Field("", max_length=40, description="e.g. -20 % esta semana")
    concepts: list[str] = Field(
        min_length=1, max_length=3, description="visual concepts: a prompt each"
    )
    headlines: list[str] = Field(min_length=2, max_length=4)
    ctas: list[str] = Field(min_length=1, max_length=3, description="calls to action")
    placements: list[Placement] = Field(default_factory=lambda: ["1:1"], min_length=1)
    platforms: list[presets.Platform] = Field(
        default_factory=list, description="checked against their copy limits"
    )
    style: Style = "product"
    seed: int | None = Field(None, ge=0, lt=2**31)
    audience: str = Field("", max_length=80, description="who it is for (kept with the brief)")
    tone: Tone = "friendly"
    palettes: int = Field(
        1, ge=1, le=2, description="2: every variant also in the kit's second palette"
    )
    combinations: list[str] = Field(
        default_factory=list,
        max_length=72,
        description="a fractional design: the level codes to render (1B2: concept 1, "
        "headline B, CTA 2; 1B2-2: in palette 2); empty: every combination",
    )


class CopyRequest(RequestModel):
    """Headlines and calls to action proposed for a product, for the user to edit."""

    product: str = Field(min_length=1, max_length=80)
    price: str = Field("", max_length=24)
    offer: str = Field("", max_length=40)
    audience: str = Field("", max_length=80)
    tone: Tone = "friendly"
    use_llm: bool | None = Field(None, description="None: the LLM when one is set")


class ResultsRequest(RequestModel):
    """A platform's per-ad results for a brief's variants (the CSV as exported)."""

    brief_id: str = Field(max_length=40)
    csv: str = Field(min_length=1, description="Meta Ads Manager or Google Ads export")


@dataclass
class Layer:
    """One drawn element of a variant: where, at what size, and the contrast measured."""

    role: str
    box: tuple[int, int, int, int]
    size_px: int = 0
    contrast: float = 0.0
    plate: bool = False

    def row(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "box": list(self.box),
            "size_px": self.size_px,
            "contrast": round(self.contrast, 2),
            "plate": self.plate,
        }


# -- the variant matrix ---------------------------------------------------------------------
CODE = re.compile(r"([1-3])([A-D])([1-3])(?:-([12]))?")


def level_code(c: int, h: int, k: int, pal: int, palettes: int) -> str:
    """``1B2`` (concept 1, headline B, CTA 2), ``1B2-2`` in palette 2 of a two-palette brief."""
    code = f"{c + 1}{HEADLINE_LETTERS[h]}{k + 1}"
    return f"{code}-{pal + 1}" if palettes > 1 else code


def levels_of(c: int, h: int, k: int, pal: int, palettes: int) -> dict[str, Any]:
    levels: dict[str, Any] = {"concept": c + 1, "headline": HEADLINE_LETTERS[h], "cta": k + 1}
    if palettes > 1:
        levels["palette"] = pal + 1
    return levels


def parse_code(code: str, request: BriefRequest) -> tuple[int, int, int, int] | None:
    """A level code's (concept, headline, CTA, palette) indices in this brief, or None."""
    found = CODE.fullmatch(code.strip())
    if not found:
        return None
    c, h, k = int(found[1]) - 1, HEADLINE_LETTERS.index(found[2]), int(found[3]) - 1
    pal = int(found[4]) - 1 if found[4] else 0
    if (found[4] is None) != (request.palettes == 1):
        return None  # a two-palette brief's codes name their palette, a one-palette's do not
    inside = (
        c < len(request.concepts)
        and h < len(request.headlines)
        and k < len(request.ctas)
        and pal < request.palettes
    )
    return (c, h, k, pal) if inside else None


def matrix(request: BriefRequest) -> list[tuple[int, int, int, int]]:
    """Every combination of the brief's levels (the full design)."""
    return [
        (c, h, k, p)
        for c in range(len(request.concepts))
        for h in range(len(request.headlines))
        for k in range(len(request.ctas))
        for p in range(request.palettes)
    ]


def fraction(concepts: int, headlines: int, ctas: int, palettes: int = 1) -> list[str]:
    """A balanced fraction of the matrix: every concept × headline pair once (more rows only
    where a factor has more levels than there are pairs), the calls to action and palettes
    rotated across them, so every level of every factor appears about equally often and the
    CTA and palette are not the same split."""
    pairs = [(c, h) for c in range(concepts) for h in range(headlines)]
    rows = max(len(pairs), ctas, palettes)
    codes = []
    for r in range(rows):
        c, h = pairs[r % len(pairs)]
        codes.append(level_code(c, h, r % ctas, (r + r // ctas) % palettes, palettes))
    return list(dict.fromkeys(codes))


def palette(kit: dict[str, Any], index: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (primary, accent) colours of palette ``index``: the kit's first two colours; the
    second palette its next two, or the first two swapped when the kit has fewer."""
    colours = [*kit["colours"], *brand.DEFAULT_COLOURS]
    if index == 0:
        pair = colours[:2]
    elif len(kit["colours"]) >= 4:
        pair = kit["colours"][2:4]
    else:
        pair = [colours[1], colours[0]]
    primary, accent = (compose.hex_rgb(c) for c in pair)
    return primary, accent


# -- copy proposals -------------------------------------------------------------------------
# Templates by language and tone; a template whose {field} is empty is left out. Short enough
# for Google's 30-character headlines once a product's name is in, most of them.
HEADLINE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "friendly": (
            "{product}, como en casa",
            "Tu momento {product}",
            "Date un gusto hoy",
            "{product} para {audience}",
            "{offer} en {product}",
            "Hecho para ti",
            "Lo que te mereces",
        ),
        "premium": (
            "{product}: lo auténtico",
            "El detalle que se nota",
            "Calidad sin atajos",
            "{product}, hecho con calma",
            "Para {audience} exigentes",
            "Lo mejor, sin prisa",
        ),
        "urgent": (
            "{offer}: solo esta semana",
            "{product} a {price}",
            "Últimas unidades",
            "No te quedes sin {product}",
            "Hoy {offer}",
            "Solo por tiempo limitado",
        ),
        "playful": (
            "¿{product}? ¡Claro que sí!",
            "Tu nuevo favorito",
            "Plan perfecto: {product}",
            "Antojo resuelto",
            "{offer} y a disfrutar",
            "Sonríe, es {product}",
        ),
    },
    "en": {
        "friendly": (
            "{product}, just like home",
            "Your {product} moment",
            "Treat yourself today",
            "{product} for {audience}",
            "{offer} on {product}",
            "Made for you",
            "You deserve it",
        ),
        "premium": (
            "{product}: the real thing",
            "Details you can feel",
            "Quality, no shortcuts",
            "{product}, made with care",
            "For discerning {audience}",
            "The best, unhurried",
        ),
        "urgent": (
            "{offer}: this week only",
            "{product} for {price}",
            "Last units left",
            "Don't miss {product}",
            "{offer} today",
            "Limited time only",
        ),
        "playful": (
            "{product}? Oh yes!",
            "Your new favourite",
            "Perfect plan: {product}",
            "Craving solved",
            "{offer}, enjoy!",
            "Smile, it's {product}",
        ),
    },
}
CTA_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "friendly": ("Pide el tuyo", "Descúbrelo", "Compra ahora", "Pruébalo"),
        "premium": ("Descubre más", "Reserva el tuyo", "Ver colección", "Compra ahora"),
        "urgent": ("Compra ya", "Aprovecha hoy", "Ver oferta", "Reserva hoy"),
        "playful": ("¡Lo quiero!", "Pide el tuyo", "Anímate", "Pruébalo"),
    },
    "en": {
        "friendly": ("Get yours", "Discover it", "Shop now", "Try it"),
        "premium": ("Discover more", "Reserve yours", "See the range", "Shop now"),
        "urgent": ("Buy now", "Grab it today", "See the offer", "Book today"),
        "playful": ("I want it!", "Get yours", "Go for it", "Try it"),
    },
}
MAX_HEADLINE, MAX_CTA = 40, 22  # proposals' lengths (a user may write longer: the fit decides)


def rule_copy(request: CopyRequest, lang: str) -> tuple[list[str], list[str]]:
    """Four headlines and three calls to action from the templates (the tone's first, then the
    others'), those with an empty field or too long left out, the ≤ 30-character ones first."""
    lang = lang if lang in HEADLINE_TEMPLATES else "es"
    fields = {
        "product": request.product.strip(),
        "price": request.price.strip(),
        "offer": request.offer.strip(),
        "audience": request.audience.strip(),
    }
    tones = [request.tone, *(t for t in HEADLINE_TEMPLATES[lang] if t != request.tone)]

    def filled(templates: dict[str, tuple[str, ...]], limit: int) -> list[str]:
        out = []
        for tone in tones:
            for template in templates[tone]:
                names = re.findall(r"{(\w+)}", template)
                if all(fields[n] for n in names):
                    text = template.format(**fields)
                    text = text[0].upper() + text[1:]
                    if len(text) <= limit and text not in out:
                        out.append(text)
        return out

    headlines = filled(HEADLINE_TEMPLATES[lang], MAX_HEADLINE)
    headlines = sorted(headlines[:8], key=lambda h: len(h) > 30)[:4]
    return headlines, filled(CTA_TEMPLATES[lang], MAX_CTA)[:3]


LLM_COPY = (
    "You write short advertising copy in {language}. For the product below write 4 different "
    "headlines of at most 30 characters and 3 calls to action of at most 20 characters, in a "
    "{tone} tone. Answer with 7 lines and nothing else: 4 lines starting with 'H: ' and 3 lines "
    "starting with 'C: '."
)


def llm_lines(reply: str) -> tuple[list[str], list[str]]:
    """The headlines (``H:``) and calls to action (``C:``) of the LLM's reply, cleaned; lines
    with neither mark count as headlines; anything too long or empty is dropped."""
    headlines, ctas = [], []
    for raw in reply.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", raw).strip()
        target, limit = headlines, MAX_HEADLINE
        mark = re.match(r"^(H|C|CTA|Headline|Titular)\s*:\s*", line, re.IGNORECASE)
        if mark:
            if mark[1].upper().startswith("C"):
                target, limit = ctas, MAX_CTA
            line = line[mark.end() :]
        line = line.strip(" \"'«»“”")
        if line and len(line) <= limit and line not in target and any(ch.isalpha() for ch in line):
            target.append(line)
    return headlines[:4], ctas[:3]


def source_aspect(placement: str) -> str:
    """The SDXL placement a variant placement's visual is generated at."""
    return CROPPED[placement][0] if placement in CROPPED else placement


def canvas_size(placement: str) -> tuple[int, int]:
    """A variant placement's canvas in pixels."""
    from enfoads.core.pipelines.image import ASPECTS

    return CROPPED[placement][1] if placement in CROPPED else ASPECTS[placement]


def safe_box(size: tuple[int, int], placement: str) -> tuple[int, int, int, int]:
    """The placement's safe zone in pixels (9:16: every vertical placement's), taken inside
    the part of the canvas the platforms' exact ratio keeps (an SDXL 768×1344 is a little
    wider than 9:16: the export crops its sides, so the margins are measured from there)."""
    w, h = size
    across, down = (float(n) for n in placement.split(":"))
    keep_w, keep_h = min(w, h * across / down), min(h, w * down / across)
    left, top = (w - keep_w) / 2, (h - keep_h) / 2
    zone = compose.SAFE_ZONES.get(placement) or dict.fromkeys(
        ("top", "bottom", "left", "right"), MARGIN
    )
    return (
        int(math.ceil(left + zone["left"] * keep_w)),
        int(math.ceil(top + zone["top"] * keep_h)),
        int(left + keep_w - zone["right"] * keep_w),
        int(top + keep_h - zone["bottom"] * keep_h),
    )


def boxes(size: tuple[int, int], placement: str, logo: bool) -> dict[str, tuple[int, ...]]:
    """Where each element goes inside the safe zone: the headline on top (the logo beside it),
    the price above the button, the button at the bottom."""
    x0, y0, x1, y1 = safe_box(size, placement)
    w, h = x1 - x0, y1 - y0
    logo_w = int(0.22 * w) if logo else 0
    return {
        "headline": (x0, y0, x1 - logo_w - (int(0.03 * w) if logo else 0), y0 + int(0.34 * h)),
        "logo": (x1 - logo_w, y0, x1, y0 + logo_w),
        "price": (x0, y1 - int(0.34 * h), x0 + int(0.7 * w), y1 - int(0.19 * h)),
        "cta": (x0, y1 - int(0.17 * h), x1, y1),
    }


def fit(
    text: str, box: tuple[int, ...], short_side: int, role: str, font_path: str | None
) -> tuple[int, list[list[str]]] | None:
    """The largest type size (down to the role's minimum) at which ``text`` wraps into the box
    (three lines at most), and its lines; None when it does not fit even at the minimum."""
    top, bottom = SIZES[role]
    width, height = box[2] - box[0], box[3] - box[1]
    size = int(top * short_side)
    while size >= int(bottom * short_side):
        face = compose.font(size, font_path)
        pad = 2 * max(4, size // 5)
        lines, line = [], []
        for word in text.split():
            trial = [*line, word]
            if face.getlength(" ".join(trial)) + pad <= width:
                line = trial
            elif line:
                lines.append(line)
                line = [word]
            else:
                line = None
                break
        if line is not None:
            lines.append(line)
            ascent, descent = face.getmetrics()
            tall = int((ascent + descent) * 1.12) * len(lines) + pad
            if len(lines) <= 3 and tall <= height and all(lines):
                return size, lines
        size = int(size * 0.9)
    return None


def fitted(
    text: str,
    box: tuple[int, ...],
    short_side: int,
    role: str,
    font_path: str | None,
    field: str,
    placement: str,
) -> tuple[int, list[list[str]]]:
    """``fit``, or the refusal that names the text and the placement it does not fit."""
    got = fit(text, box, short_side, role, font_path)
    if got is None:
        raise InvalidInput(
            "error.invalid",
            field=field,
            reason=Reason("reason.text_does_not_fit", text=text[:60], placement=placement),
        )
    return got


def text_contrast(canvas: np.ndarray, sprite: np.ndarray, x: int, y: int, colour: tuple) -> float:
    """WCAG contrast of ``colour`` against the pixels behind the sprite's glyphs (the 5th
    percentile: a text must read over its worst part, not its average)."""
    h, w = sprite.shape[:2]
    behind = canvas[y : y + h, x : x + w]
    mask = sprite[: behind.shape[0], : behind.shape[1], 3] > 0
    if not mask.any():
        return 21.0
    lum = compose.relative_luminance(behind[mask])
    text = compose.relative_luminance(colour)
    ratios = (np.maximum(lum, text) + 0.05) / (np.minimum(lum, text) + 0.05)
    return float(np.percentile(ratios, 5))


def blend(canvas: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    compose.Sprite(sprite, x, y).blend(canvas)


def readable(
    canvas: np.ndarray, lines: list[list[str]], size: int, colour: tuple, box: tuple, font: Any
) -> Layer:
    """Draw text at the box's top left; behind it, a plate of the opposite lightness when the
    picture gives less than 4.5:1 (the contrast then measured again, on the plate)."""
    sprite = compose.text_sprite(lines, size, colour, colour, 0, font_path=font)
    x, y = box[0], box[1]
    contrast = text_contrast(canvas, sprite, x, y, colour)
    plate = contrast < TEXT_CONTRAST
    if plate:
        fill = (17, 17, 17) if compose.relative_luminance(colour) > 0.4 else (250, 250, 250)
        backing = compose.text_sprite(lines, size, fill, fill, 0, box=(*fill, 235), font_path=font)
        blend(canvas, backing, x, y)
        contrast = text_contrast(canvas, sprite, x, y, colour)
    blend(canvas, sprite, x, y)
    h, w = sprite.shape[:2]
    return Layer("", (x, y, x + w, y + h), size, contrast, plate)


class VariantsCapability(Capability):
    """``render_variants`` and ``import_results``: briefs, variants and their results."""

    name = "variants"
    needs = ("image", "prompt")  # the visuals; the optional LLM for copy proposals

    def models(self) -> list[ModelSpec]:
        return []  # SDXL through the image capability; Pillow sets the type

    def asset_kinds(self) -> dict[str, tuple[str, ...]]:
        return {"brief": ("json",), "ad_results": ("json",)}

    def jobs(self) -> list[JobSpec]:
        return [
            JobSpec(
                BRIEF_JOB,
                BriefRequest,
                self.render,
                check=self.check,
                route="/api/briefs",
                queue="images",
                timeout_s=3600.0,
            ),
            JobSpec(
                RESULTS_JOB,
                ResultsRequest,
                self.import_results,
                check=self.check_results,
                route="/api/briefs/{brief_id}/results",
                queue="images",
                timeout_s=300.0,
                rate="upload",
                body_uploads=1,
            ),
            JobSpec(
                COPY_JOB,
                CopyRequest,
                self.propose,
                queue="images",  # the LLM, when one is set, is a GPU model
                timeout_s=300.0,
            ),
        ]

    def options(self) -> dict[str, Any]:
        return {
            "max_concepts": 3,
            "headlines": [2, 4],
            "max_ctas": 3,
            "tones": list(Tone.__args__),
            "max_palettes": 2,
            "cta_suggestions": {
                "es": ["Compra ahora", "Pide el tuyo", "Descúbrelo", "Reserva hoy", "Ver oferta"],
                "en": ["Shop now", "Get yours", "Discover it", "Book today", "See the offer"],
            },
        }

    # -- checks before queueing ---------------------------------------------------------
    def check(self, request: BriefRequest) -> BriefRequest:
        """Every text fits every placement (or the headline and placement are named), and the
        copy is inside each chosen platform's limit."""
        kit = brand.load_kit(self.services.assets)
        font = self.font_path(kit)
        for field, texts, role in (
            ("headlines", request.headlines, "headline"),
            ("ctas", request.ctas, "cta"),
        ):
            for i, text in enumerate(texts):
                if not text.strip():
                    raise InvalidInput("error.empty", field=f"{field}[{i}]")
                for placement in request.placements:
                    size = canvas_size(placement)
                    box = boxes(size, placement, bool(kit["logo_asset_id"]))[role]
                    fitted(text, box, min(size), role, font, f"{field}[{i}]", placement)
        for i, code in enumerate(request.combinations):
            if parse_code(code, request) is None:
                raise InvalidInput(
                    "error.invalid",
                    field=f"combinations[{i}]",
                    reason=Reason("reason.unknown_combination", code=code[:12]),
                )
        for preset in presets.presets_for(request.platforms):
            for i, text in enumerate(request.headlines):
                if preset.copy_limit and len(text) > preset.copy_limit:
                    raise InvalidInput(
                        "error.too_long",
                        field=f"headlines[{i}]",
                        length=len(text),
                        limit=preset.copy_limit,
                    )
        return request

    def check_results(self, request: ResultsRequest) -> ResultsRequest:
        self.brief(request.brief_id)  # NotFound names it
        return request

    def font_path(self, kit: dict[str, Any]) -> str | None:
        if kit.get("font_asset_id"):
            return str(self.services.assets.file_path(kit["font_asset_id"]))
        return None

    def brief(self, brief_id: str) -> dict[str, Any]:
        asset = self.services.assets.get(brief_id)
        if asset.kind != "brief":
            raise InvalidInput(
                "error.invalid",
                field="brief_id",
                reason=Reason("reason.kind_mismatch", id=asset.id, have=asset.kind, want="brief"),
            )
        return json.loads(self.services.assets.read_bytes(asset))

    # -- render_variants ----------------------------------------------------------------
    def render(self, ctx: JobContext, request: BriefRequest) -> JobResult:
        from enfoads.core.pipelines.image import GenerateImageRequest

        kit = brand.load_kit(self.services.assets)
        brief_id = new_asset_id("brief")
        short = brief_id.split("_", 1)[1][:4]
        seed = request.seed if request.seed is not None else int(brief_id[-6:], 16) % 2**31
        visuals: dict[tuple[int, str], str] = {}
        for c, concept in enumerate(request.concepts):
            ctx.progress(
                5 + 40 * c / len(request.concepts),
                ctx.t("stage.variants_visual", n=c + 1, total=len(request.concepts)),
            )
            made = self.services.need("image").run(
                ctx,
                GenerateImageRequest(
                    prompt=f"{request.product}, {concept}",
                    seed=seed,
                    placements=sorted({source_aspect(p) for p in request.placements}),
                    style=request.style,
                ),
            )
            for image in made.data["images"]:
                visuals[(c, image["placement"])] = image["asset_id"]
        variants, stored = {}, list(visuals.values())
        combos = [parse_code(code, request) for code in request.combinations] or matrix(request)
        for n, (c, h, k, pal) in enumerate(dict.fromkeys(combos)):
            ctx.progress(
                50 + 45 * n / len(combos), ctx.t("stage.variants_type", n=n + 1, total=len(combos))
            )
            variant_id = f"{short}-{level_code(c, h, k, pal, request.palettes)}"
            files = {}
            for placement in request.placements:
                asset = self.compose_variant(
                    ctx,
                    request,
                    kit,
                    brief_id,
                    variant_id,
                    (c, h, k, pal),
                    placement,
                    visuals[(c, source_aspect(placement))],
                )
                files[placement] = asset.id
                stored.append(asset.id)
            variants[variant_id] = {
                "levels": levels_of(c, h, k, pal, request.palettes),
                "concept": request.concepts[c],
                "headline": request.headlines[h],
                "cta": request.ctas[k],
                "palette": pal + 1,
                "files": files,
            }
        record = {
            "brief_id": brief_id,
            "brief": request.model_dump(mode="json"),
            "seed": seed,
            "variants": variants,
            "visuals": {f"{c + 1}:{p}": a for (c, p), a in visuals.items()},
        }
        ctx.progress(97, ctx.t("stage.saving"))
        self.services.assets.add_bytes(
            json.dumps(record, ensure_ascii=False, indent=2).encode(),
            "brief",
            ext="json",
            asset_id=brief_id,
            name=request.product[:80],
            job_id=ctx.job_id,
            parents=stored[:50],
        )
        return JobResult(
            (brief_id, *stored), {"brief_id": brief_id, "variants": variants, "seed": seed}
        )

    def compose_variant(
        self,
        ctx: JobContext,
        request: BriefRequest,
        kit: dict[str, Any],
        brief_id: str,
        variant_id: str,
        levels: tuple[int, int, int, int],
        placement: str,
        visual_id: str,
    ) -> Any:
        """The visual with this variant's brand layer set in type; stored with its record."""
        from PIL import Image

        assets = self.services.assets
        visual = assets.get(visual_id)
        picture = assets.open_image(visual).convert("RGB")
        if placement in CROPPED:
            from PIL import ImageOps

            picture = ImageOps.fit(picture, canvas_size(placement), Image.Resampling.LANCZOS)
        canvas = np.array(picture)
        size = (canvas.shape[1], canvas.shape[0])
        font = self.font_path(kit)
        c, h, k, pal = levels
        primary, accent = palette(kit, pal)
        place = boxes(size, placement, bool(kit["logo_asset_id"]))
        layers = [self.headline(canvas, request.headlines[h], place["headline"], size, font)]
        if request.price or request.offer:
            layers.append(self.price(canvas, request, place["price"], size, font, primary))
        layers.append(self.button(canvas, request.ctas[k], place["cta"], size, font, accent))
        if kit["logo_asset_id"]:
            layers.append(self.logo(canvas, kit["logo_asset_id"], place["logo"]))
        record = {
            "variant": variant_id,
            "brief_id": brief_id,
            "levels": levels_of(c, h, k, pal, request.palettes),
            "headline": request.headlines[h],
            "cta": request.ctas[k],
            "placement": placement,
            "layers": [layer.row() for layer in layers],
            "models": list(visual.model_ids),
        }
        name = f"{variant_id} · {request.product}"[:100] + f" [{placement}]"
        parents = [visual_id, *(a for a in (kit["logo_asset_id"], kit["font_asset_id"]) if a)]
        return assets.add_image(
            Image.fromarray(canvas),
            "image",
            name=name,
            prompt=visual.prompt,
            seed=visual.seed,
            job_id=ctx.job_id,
            parents=parents,
            model_ids=list(visual.model_ids),
            tags=("variant", brief_id),
            png_text=ai_png_text(
                f"Ad variant {variant_id}: AI visual with the brand layer set in type", record
            ),
            meta={**record, "ai_generated": True},
            claim=Claim(
                TRAINED if visual.model_ids else COMPOSITE,
                f"variant {variant_id}: headline, price, call to action and logo set in type",
                edits=visual_id,
            ),
        )

    def headline(self, canvas, text, box, size, font) -> Layer:
        # (the check refused it before queueing; here only if the kit changed since)
        got = fitted(text, box, min(size), "headline", font, "headlines", f"{size[0]}×{size[1]}")
        region = canvas[box[1] : box[3], box[0] : box[2]]
        light = float(np.mean(compose.relative_luminance(region))) < 0.45
        colour = (255, 255, 255) if light else (17, 17, 17)
        layer = readable(canvas, got[1], got[0], colour, box, font)
        layer.role = "headline"
        return layer

    def price(self, canvas, request, box, size, font, primary) -> Layer:
        text = " · ".join(t for t in (request.price, request.offer) if t)
        got = fit(text, box, min(size), "price", font) or (
            int(SIZES["price"][1] * min(size)),
            [text.split()],
        )
        white = (255, 255, 255)
        fill = (
            primary
            if compose.contrast_ratio(compose.relative_luminance(primary), 1.0) >= TEXT_CONTRAST
            else (17, 17, 17)
        )
        sprite = compose.text_sprite(
            got[1], got[0], white, white, 0, box=(*fill, 255), font_path=font
        )
        blend(canvas, sprite, box[0], box[1])
        contrast = compose.contrast_ratio(compose.relative_luminance(fill), 1.0)
        h, w = sprite.shape[:2]
        return Layer("price", (box[0], box[1], box[0] + w, box[1] + h), got[0], contrast, True)

    def button(self, canvas, text, box, size, font, accent) -> Layer:
        got = fitted(text, box, min(size), "cta", font, "ctas", f"{size[0]}×{size[1]}")
        lum = compose.relative_luminance(accent)
        ink = (
            (17, 17, 17)
            if compose.contrast_ratio(lum, 0.0056) >= compose.contrast_ratio(lum, 1.0)
            else (255, 255, 255)
        )
        sprite = compose.text_sprite(
            got[1], got[0], ink, ink, 0, box=(*accent, 255), font_path=font
        )
        h, w = sprite.shape[:2]
        x = (box[0] + box[2] - w) // 2
        y = box[3] - h
        blend(canvas, sprite, x, y)
        contrast = compose.contrast_ratio(lum, compose.relative_luminance(ink))
        return Layer("cta", (x, y, x + w, y + h), got[0], contrast, True)

    def logo(self, canvas, logo_id, box) -> Layer:
        from PIL import Image

        logo = self.services.assets.open_image(logo_id).convert("RGBA")
        logo.thumbnail((box[2] - box[0], box[3] - box[1]))
        region = canvas[box[1] : box[3], box[0] : box[2]].reshape(-1, 3).mean(axis=0)
        rgba = compose.on_plate(np.asarray(logo), tuple(int(v) for v in region))
        rgba = (
            np.asarray(Image.fromarray(rgba).resize(logo.size))
            if rgba.shape[1] > box[2] - box[0]
            else rgba
        )
        h, w = rgba.shape[:2]
        x = box[2] - w
        blend(canvas, rgba, x, box[1])
        return Layer("logo", (x, box[1], box[2], box[1] + h))

    # -- propose_copy -------------------------------------------------------------------
    def propose(self, ctx: JobContext, request: CopyRequest) -> JobResult:
        """Headlines and calls to action to edit: the LLM's first when one is set (or asked
        for), the templates' to fill what it did not give, or instead when it cannot run."""
        from enfoads.core.errors import EnfoadsError

        headlines, ctas = rule_copy(request, ctx.lang)
        engine, notices = "rules", []
        model = self.settings.prompt_llm_model
        use_llm = bool(model) if request.use_llm is None else request.use_llm
        if use_llm:
            ctx.progress(20, ctx.t("stage.copy_llm"))
            language = "Spanish" if ctx.lang == "es" else "English"
            system = LLM_COPY.format(language=language, tone=request.tone)
            facts = "; ".join(
                f"{k}: {v}"
                for k, v in (
                    ("product", request.product),
                    ("price", request.price),
                    ("offer", request.offer),
                    ("audience", request.audience),
                )
                if v
            )
            try:
                reply = self.services.need("prompt").chat(system, facts, max_new_tokens=120)
            except EnfoadsError as exc:
                log.warning("copy LLM unavailable, using the templates: %s", exc)
                notices.append(
                    ctx.t("notice.llm_fallback", model=model or "-", reason=exc.message(ctx.lang))
                )
            else:
                got_h, got_c = llm_lines(reply)
                if got_h or got_c:
                    engine = "llm"
                    headlines = [*got_h, *(h for h in headlines if h not in got_h)][:4]
                    ctas = [*got_c, *(c for c in ctas if c not in got_c)][:3]
                else:
                    notices.append(ctx.t("notice.llm_no_copy", model=model or "-"))
        return JobResult(
            (), {"headlines": headlines, "ctas": ctas, "engine": engine, "notices": notices}
        )

    # -- import_results -----------------------------------------------------------------
    def import_results(self, ctx: JobContext, request: ResultsRequest) -> JobResult:
        brief = self.brief(request.brief_id)
        rows, skipped = read_results(request.csv, list(brief["variants"]))
        if not rows:
            raise InvalidInput(
                "error.invalid",
                field="csv",
                reason=Reason("reason.no_variant_rows", ids=", ".join(list(brief["variants"])[:4])),
            )
        report = analyse(rows, brief["variants"], ctx.lang)
        report["skipped_rows"] = skipped
        chart = interval_chart(report, ctx.lang)
        assets = self.services.assets
        stored = assets.add_bytes(
            json.dumps(report, ensure_ascii=False, indent=2).encode(),
            "ad_results",
            ext="json",
            name=ctx.t("asset.ad_results", name=brief["brief"]["product"])[:100],
            job_id=ctx.job_id,
            parents=[request.brief_id],
            part_of=request.brief_id,
        )
        chart_asset = assets.add_bytes(
            chart,
            "image",
            ext="png",
            name=ctx.t("asset.ad_results_chart"),
            job_id=ctx.job_id,
            parents=[stored.id],
            part_of=request.brief_id,
        )
        report["chart_asset_id"] = chart_asset.id
        return JobResult((stored.id, chart_asset.id), report)


# -- results ------------------------------------------------------------------------------
COLUMNS = {
    "name": ("ad name", "nombre del anuncio", "ad", "anuncio", "variant", "variante"),
    "impressions": ("impressions", "impresiones", "impr.", "impr"),
    "clicks": (
        "link clicks",
        "clicks (all)",
        "clicks",
        "clics en el enlace",
        "clics (todos)",
        "clics",
    ),
    "conversions": ("conversions", "results", "conversiones", "resultados", "conv."),
    "spend": (
        "amount spent (eur)",
        "amount spent (usd)",
        "amount spent",
        "cost",
        "importe gastado (eur)",
        "coste",
        "costo",
    ),
}


def _fold(text: str) -> str:
    return "".join(
        c
        for c in unicodedata.normalize("NFD", text.strip().lower())
        if unicodedata.category(c) != "Mn"
    )


def number(text: str) -> float:
    """A report's number as written in Spanish or English ("1.234", "1,234", "12,5", "€ 3.40"):
    with both marks the last is the decimal one; one mark followed by exactly three digits,
    or repeated, separates thousands (counts are whole numbers)."""
    cleaned = re.sub(r"[^\d.,-]", "", text or "")
    if "," in cleaned and "." in cleaned:
        decimal = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        cleaned = cleaned.replace("." if decimal == "," else ",", "").replace(decimal, ".")
    elif "," in cleaned or "." in cleaned:
        mark = "," if "," in cleaned else "."
        thousands = cleaned.count(mark) > 1 or len(cleaned.rpartition(mark)[2]) == 3
        cleaned = cleaned.replace(mark, "" if thousands else ".")
    try:
        return float(cleaned)
    except ValueError:
        return 0.0


def read_results(text: str, variant_ids: list[str]) -> tuple[dict[str, dict[str, float]], int]:
    """Per variant: impressions, clicks, conversions, spend (rows added up); and how many rows
    named no variant of the brief. The header is the first line that has an impressions and a
    clicks column (Google's report starts with its title and date range)."""
    lines = text.lstrip("\ufeff").splitlines()
    for start, line in enumerate(lines):  # noqa: B007 - the header line, used below
        folded = _fold(line)
        if any(c in folded for c in COLUMNS["impressions"]) and "cli" in folded:
            break
    else:
        raise InvalidInput("error.invalid", field="csv", reason=Reason("reason.no_results_header"))
    sample = "\n".join(lines[start : start + 5])
    dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
    reader = csv.reader(io.StringIO("\n".join(lines[start:])), dialect)
    header = [_fold(h) for h in next(reader)]
    where = {
        key: next((header.index(n) for n in names if n in header), None)
        for key, names in COLUMNS.items()
    }
    pattern = re.compile("|".join(re.escape(v) for v in sorted(variant_ids, key=len, reverse=True)))
    rows: dict[str, dict[str, float]] = {}
    skipped = 0
    for cells in reader:
        found = pattern.search(" ".join(cells)) if cells else None
        if not found:
            skipped += bool(cells and any(c.strip() for c in cells))
            continue
        row = rows.setdefault(
            found.group(0), dict.fromkeys(("impressions", "clicks", "conversions", "spend"), 0.0)
        )
        for key in row:
            index = where[key]
            if index is not None and index < len(cells):
                row[key] += number(cells[index])
    return rows, skipped


def p_best(
    successes: np.ndarray, trials: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each arm's probability of the highest rate (Beta(1 + s, 1 + n − s) posteriors, sampled)
    and its 95 % credible interval."""
    failures = np.maximum(trials - successes, 0)
    draws = rng.beta(1 + successes[:, None], 1 + failures[:, None], size=(len(trials), DRAWS))
    best = np.bincount(draws.argmax(axis=0), minlength=len(trials)) / DRAWS
    return best, np.percentile(draws, [2.5, 97.5], axis=1).T


def analyse(
    rows: dict[str, dict[str, float]], variants: dict[str, Any], lang: str
) -> dict[str, Any]:
    """Per variant and per factor level: CTR and conversion rate with their probability of being
    the best and intervals, and the verdict in words."""
    from enfoads.core.i18n import t

    rng = np.random.default_rng(7)  # the same report for the same numbers
    ids = sorted(rows)
    clicks = np.array([rows[v]["clicks"] for v in ids])
    views = np.array([rows[v]["impressions"] for v in ids])
    convs = np.array([rows[v]["conversions"] for v in ids])
    ctr_best, ctr_ci = p_best(clicks, views, rng)
    cvr_best, _ = p_best(convs, clicks, rng)
    per_variant = [
        {
            "variant": v,
            **{k: round(rows[v][k], 2) for k in ("impressions", "clicks", "conversions", "spend")},
            "ctr": float(clicks[i] / views[i]) if views[i] else 0.0,
            "ctr_interval": [round(float(x), 5) for x in ctr_ci[i]],
            "p_best_ctr": round(float(ctr_best[i]), 4),
            "p_best_cvr": round(float(cvr_best[i]), 4),
        }
        for i, v in enumerate(ids)
    ]
    factors, verdicts = {}, []
    for factor in ("headline", "concept", "cta", "palette"):
        levels = sorted({str(variants[v]["levels"].get(factor, 1)) for v in ids})
        if len(levels) < 2:
            continue
        by = {
            lv: [i for i, v in enumerate(ids) if str(variants[v]["levels"].get(factor, 1)) == lv]
            for lv in levels
        }
        best, ci = p_best(
            np.array([clicks[by[lv]].sum() for lv in levels]),
            np.array([views[by[lv]].sum() for lv in levels]),
            rng,
        )
        factors[factor] = [
            {
                "level": lv,
                "p_best_ctr": round(float(best[j]), 4),
                "ctr_interval": [round(float(x), 5) for x in ci[j]],
            }
            for j, lv in enumerate(levels)
        ]
        j = int(best.argmax())
        if best[j] >= DECIDED:
            verdicts.append(
                t(f"verdict.{factor}.wins", lang, level=levels[j], p=round(100 * best[j]))
            )
        else:
            verdicts.append(t(f"verdict.{factor}.open", lang))
    top = int(ctr_best.argmax())
    winner = ids[top] if ctr_best[top] >= DECIDED else None
    head = (
        t("verdict.winner", lang, variant=winner, p=round(100 * ctr_best[top]))
        if winner
        else t("verdict.undecided", lang, variant=ids[top], p=round(100 * ctr_best[top]))
    )
    return {
        "winner": winner,
        "variants": per_variant,
        "factors": factors,
        "verdict": " ".join([head, *verdicts]),
    }


def interval_chart(report: dict[str, Any], lang: str) -> bytes:
    """Each variant's CTR interval as a bar with its probability of being the best (PNG)."""
    from PIL import Image, ImageDraw

    rows = report["variants"]
    width, row_h, left = 900, 34, 170
    image = Image.new("RGB", (width, 40 + row_h * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    face = compose.font(16)
    top = max(r["ctr_interval"][1] for r in rows) or 1.0
    scale = (width - left - 120) / top
    draw.text((10, 8), "CTR (95 %)", fill=(0, 0, 0), font=face)
    for i, row in enumerate(rows):
        y = 40 + i * row_h
        lo, hi = row["ctr_interval"]
        colour = (0, 130, 60) if row["variant"] == report["winner"] else (60, 90, 160)
        draw.text((10, y), row["variant"], fill=(0, 0, 0), font=face)
        draw.rectangle((left + lo * scale, y + 6, left + hi * scale, y + 20), fill=colour)
        draw.text((width - 110, y), f"{100 * row['p_best_ctr']:.0f} %", fill=(0, 0, 0), font=face)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
