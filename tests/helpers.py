"""Small helpers shared by the tests."""

from __future__ import annotations


def missing_model(response) -> bool:
    """The one 5xx a request may get in the offline tests: a 503 that names a model or voice
    not on disk (only the joe voice is), never a crash."""
    return response.status_code == 503 and response.json().get("error") in (
        "model_not_downloaded", "voice_not_downloaded")
