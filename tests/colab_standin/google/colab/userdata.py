"""``google.colab.userdata`` stand-in: secrets from ``COLAB_STANDIN_<NAME>`` variables."""

from __future__ import annotations

import os

from google.colab import record


class SecretNotFoundError(Exception):
    pass


class NotebookAccessError(Exception):
    pass


def get(key: str) -> str:
    record("userdata", "get", key)
    value = os.environ.get(f"COLAB_STANDIN_{key}")
    if value is None:
        raise SecretNotFoundError(key)
    return value
