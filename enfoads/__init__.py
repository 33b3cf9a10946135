"""Enfoads Studio: an AI ad-creative studio for Colab, a Voila dashboard and an HTTP API.

Importing this package does no work: no torch, no GPU probe, no argument parsing.
"""

__version__ = "0.1.0"
