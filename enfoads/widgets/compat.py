"""ipywidgets 7.7.1 and 8.x: the few places where their APIs differ, in one file.

Colab ships ipywidgets 7.7.1 and draws it with its own widget manager; ipywidgets 8 there needs
``enable_custom_widget_manager()``, the path where background updates do not refresh
(colabtools#3373) and Tab and Accordion have broken (colabtools#3571). So in Colab the panels
run on the 7.7.1 that is installed (the notebook never upgrades it); Voila and JupyterLab run
8.x. Both are tested (scripts/colab-env.sh runs the panel tests on 7.7.1).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

IPYWIDGETS_8 = int(w.__version__.split(".")[0]) >= 8


def set_titles(tab: w.Tab, titles: tuple[str, ...]) -> None:
    if IPYWIDGETS_8:
        tab.titles = tuple(titles)
    else:
        for index, title in enumerate(titles):
            tab.set_title(index, title)


def tab_titles(tab: w.Tab) -> tuple[str, ...]:
    if IPYWIDGETS_8:
        return tuple(tab.titles)
    return tuple(tab.get_title(i) for i in range(len(tab.children)))


def uploaded_files(upload: w.FileUpload) -> list[tuple[str, bytes]]:
    """``(name, content)`` of each uploaded file, whichever version filled ``value``."""
    value = upload.value
    if isinstance(value, dict):  # 7.x: {name: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value]


def tooltip(text: str) -> dict[str, Any]:
    """The hover text of a described widget (Label, text boxes): ``tooltip`` in 8.x,
    ``description_tooltip`` in 7.x (Buttons have ``tooltip`` in both)."""
    return {"tooltip": text} if IPYWIDGETS_8 else {"description_tooltip": text}
