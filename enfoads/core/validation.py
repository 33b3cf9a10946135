"""Text and values entering the studio, checked once where they come in.

A lone surrogate, a NUL byte or a control character cannot be stored as UTF-8, breaks JSON
replies and reaches subprocesses; each is refused here with a message naming the field. The
HTTP request models inherit ``RequestModel``, so every string of every request passes
``check_text`` once; the facade checks job parameters with ``check_tree`` for the callers that
do not come through HTTP (widgets, notebook code).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from enfoads.core.errors import InvalidInput
from enfoads.core.i18n import Reason

# C0 controls except tab, newline and carriage return; DEL; lone UTF-16 surrogates.
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
M = TypeVar("M", bound="BaseModel")
MAX_DEPTH = 16  # request parameters are at most a few levels deep (scenes → subtitle style)


def check_text(value: Any, field: str, *, limit: int | None = None) -> str:
    """``value`` as a string the studio can store, show and hand to a library, or a clear
    ``InvalidInput`` naming the field and the offending character."""
    if not isinstance(value, str):
        raise InvalidInput("error.invalid", field=field, reason=Reason("reason.text_expected"))
    bad = _BAD_CHAR.search(value)
    if bad is not None:
        raise InvalidInput(
            "error.bad_character",
            field=field,
            char=f"U+{ord(bad.group()):04X}",
            position=bad.start() + 1,
        )
    if limit is not None and len(value) > limit:
        raise InvalidInput("error.too_long", field=field, length=len(value), limit=limit)
    return value


def check_number(value: Any, field: str, low: float, high: float) -> float:
    """``value`` as a finite number within ``[low, high]``, or a clear ``InvalidInput``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput("error.invalid", field=field, reason=Reason("reason.number_expected"))
    if not math.isfinite(value):
        raise InvalidInput("error.not_finite", field=field)
    if not low <= value <= high:
        raise InvalidInput("error.out_of_range", field=field, value=value, low=low, high=high)
    return value


def check_tree(value: Any, field: str, depth: int = 0) -> Any:
    """Check every string (keys too) and number of a JSON-like value; refuse deep nesting,
    NaN and infinities. Returns ``value`` unchanged."""
    if depth > MAX_DEPTH:
        raise InvalidInput("error.too_deep", field=field, limit=MAX_DEPTH)
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("error.not_finite", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, field)
            check_tree(item, f"{field}.{key}" if depth else str(key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_tree(item, field, depth + 1)
    return value


def storable(value: Any, field: str) -> str:
    """The JSON text ``value`` is stored as; an ``InvalidInput`` when it cannot be (so nothing
    that would break a later read ever reaches the database)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise InvalidInput(
            "error.invalid", field=field, reason=Reason("reason.not_storable")
        ) from exc
    return text


def scrub(value: Any) -> Any:
    """A copy of ``value`` whose strings are valid UTF-8 text: for rows stored before these
    checks existed, so one bad record can never break a listing."""
    if isinstance(value, str):
        return _BAD_CHAR.sub("\ufffd", value) if _BAD_CHAR.search(value) else value
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# pydantic's error types, as reasons in the studio's language (its own texts are English).
_REASONS = {
    "missing": "reason.missing",
    "extra_forbidden": "reason.unknown_field",
    "string_type": "reason.text_expected",
    "list_type": "reason.list_expected",
    "dict_type": "reason.object_expected",
    "model_type": "reason.object_expected",
    "model_attributes_type": "reason.object_expected",
    "bool_type": "reason.bool_expected",
    "bool_parsing": "reason.bool_expected",
    "int_type": "reason.number_expected",
    "int_parsing": "reason.number_expected",
    "int_from_float": "reason.number_expected",
    "float_type": "reason.number_expected",
    "float_parsing": "reason.number_expected",
    "finite_number": "reason.number_expected",
    "too_short": "reason.too_short",
    "too_long": "reason.too_long",
    "string_too_long": "reason.too_long",
    "string_too_short": "reason.too_short",
    "greater_than": "reason.above",
    "greater_than_equal": "reason.at_least",
    "less_than": "reason.below",
    "less_than_equal": "reason.at_most",
    "enum": "reason.choice",
    "literal_error": "reason.choice",
    "multiple_of": "reason.multiple_of",
    "string_unicode": "reason.bad_text",
}


def validation_reason(error: dict[str, Any]) -> Reason:
    key = _REASONS.get(str(error.get("type")), "reason.value")
    if key == "reason.choice":
        expected = (error.get("ctx") or {}).get("expected", "")
        choices = str(expected).replace("'", "").replace(" or ", ", ")
        given = error.get("input")
        if isinstance(given, str) and given.isprintable() and 0 < len(given) <= 40:
            return Reason("reason.not_a_choice", value=given, choices=choices)  # named back
        return Reason(key, choices=choices)
    ctx = error.get("ctx") or {}
    if key == "reason.multiple_of":
        return Reason(key, step=ctx.get("multiple_of", "?"))
    bound = {"reason.above": "gt", "reason.at_least": "ge", "reason.below": "lt"}.get(key, "le")
    if key in ("reason.above", "reason.at_least", "reason.below", "reason.at_most"):
        return Reason(key, limit=ctx.get(bound, "?"))  # the bound the field declares
    return Reason(key)


def field_path(loc: Any) -> str:
    """A field's place as the studio names it: ``scenes[0].kind``, ``placements[1]``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def parse_request(model: type[M], params: Any) -> M:
    """``params`` validated by ``model``; pydantic's first error as an ``InvalidInput`` naming
    the field, in the studio's words (an ``InvalidInput`` raised inside passes through)."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        field = field_path(first.get("loc", ()))
        raise InvalidInput("error.invalid", field=field, reason=validation_reason(first)) from None


class RequestModel(BaseModel):
    """Base of every request model: unknown fields refused, no NaN or infinity, and every
    string (at any depth) checked by ``check_text``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _checked_text(cls, value: Any, info: ValidationInfo) -> Any:
        return check_tree(value, info.field_name or "body")
