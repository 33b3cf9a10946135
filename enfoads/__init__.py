"""Enfoads Studio: an AI ad-creative studio for Colab, a Voila dashboard and an HTTP API.

Importing this package does no work: no torch, no GPU probe, no argument parsing.
"""

from enfoads.version import __version__

__all__ = ["__version__", "connect"]


def connect(*args, **kwargs):  # type: ignore[no-untyped-def]
    """The studio of the data dir: this process becomes its engine, or attaches to the one
    running (see ``enfoads.attach``)."""
    from enfoads.attach import connect as _connect

    return _connect(*args, **kwargs)
