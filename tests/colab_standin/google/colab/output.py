"""``google.colab.output`` stand-in: records what the notebook asked of Colab's front end."""

from __future__ import annotations

from typing import Any

from google.colab import record


def enable_custom_widget_manager() -> None:
    record("output", "enable_custom_widget_manager")


def disable_custom_widget_manager() -> None:
    record("output", "disable_custom_widget_manager")


def serve_kernel_port_as_iframe(
    port: int, path: str = "/", height: int = 400, cache_in_notebook: bool = False
) -> None:
    record("output", "serve_kernel_port_as_iframe", port, path=path, height=height)


def serve_kernel_port_as_window(port: int, path: str = "/", anchor_text: Any = None) -> None:
    record("output", "serve_kernel_port_as_window", port, path=path)


def eval_js(script: str, ignore_result: bool = False, timeout_sec: Any = None) -> Any:
    record("output", "eval_js", script)
    return None
