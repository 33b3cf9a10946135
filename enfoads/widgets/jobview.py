"""A job followed in a notebook cell's output, so "Run all" never blocks on a download.

``show_job(studio, job)`` returns at once with a live progress bar (cancel included) that ends
in the job's images, or in its error; the panels show the same job. ``wait=True`` is for code
that needs the result in the next line (and for nbval): the call blocks until the job ends,
prints what it made, and raises ``JobFailed`` when it did not complete, so a notebook whose
job fails stops there instead of printing a warning and going on.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from enfoads.core.errors import EnfoadsError
from enfoads.core.i18n import t
from enfoads.widgets.common import JobProgress, Message, thumbnail


class JobFailed(EnfoadsError):
    status = 500


def _result_lines(job: Any) -> list[str]:
    images = (job.result or {}).get("images") or []
    if images:
        return [
            f"{i['placement']}  seed={i['seed']}  {i['width']}×{i['height']}  {i['asset_id']}"
            for i in images
        ]
    return list(job.result_asset_ids)


def show_job(studio: Any, job: Any, *, wait: bool = False) -> Any:
    """Follow ``job`` (a Job or its id) in the cell's output; see the module's docstring."""
    from IPython.display import display

    job_id = job if isinstance(job, str) else job.id
    lang = studio.settings.language
    if wait:
        done = studio.wait_job(job_id)
        print(f"{done.progress:5.1f}%  {done.stage}")
        if done.state.value != "completed":
            raise JobFailed(
                "error.job_failed",
                id=job_id,
                state=done.state.value,
                error=done.error or done.state.value,
            )
        for line in _result_lines(done):
            print(line)
        display(w.HBox([thumbnail(studio, a, "220px") for a in done.result_asset_ids]))
        return done
    results, message = w.HBox(), Message()

    def finished(payload: dict[str, Any]) -> None:
        if not message.show_failure(payload, lang):
            results.children = tuple(
                thumbnail(studio, a, "220px") for a in payload.get("result_asset_ids") or ()
            )

    progress = JobProgress(studio, finished)
    progress.follow(job_id)
    display(w.VBox([w.Label(t("ui.job_follow", lang, id=job_id)), progress, message, results]))
    current = studio.get_job(job_id)  # it may have ended before the widget subscribed
    if current.state.finished:
        progress.show(current.to_dict())
    return current
