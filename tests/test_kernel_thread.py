"""In a real kernel, a running job's progress reaches the widgets on the kernel's own thread
(colabtools#3373: Colab does not refresh widgets changed from another thread)."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

SETUP = """
import threading, time
import ipywidgets as w
from enfoads.core.jobs import JobResult
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio
from enfoads.widgets.common import JobProgress, Message

studio = Studio(load_settings(data_dir={data!r}, device="cpu", language="en")).start()
job_threads, changed, finished = set(), [], []

def steps(ctx):
    job_threads.add(threading.current_thread().name)
    for i in range(10):
        ctx.progress(i * 10, f"step {{i}}")
        time.sleep(0.1)
    for i in range(400):  # a burst, as a 24-image job sends: the page must not queue each
        ctx.progress(90 + i / 40, f"burst {{i}}")
    return JobResult((), {{}})

studio.jobs.register("steps", steps)
panel = JobProgress(studio, lambda job: finished.append((threading.current_thread().name, job["state"])))
for widget in (panel.bar, panel.stage):
    widget.observe(lambda c: changed.append(threading.current_thread().name), "value")
panel.start(lambda: studio.jobs.submit("steps", {{}}), Message(), w.Button())
"""

REPORT = """
import json
print(json.dumps({"job_threads": sorted(job_threads), "changed": changed, "finished": finished,
                  "main": threading.main_thread().name, "bar": panel.bar.value,
                  "stage": panel.stage.text}))
studio.close()
"""


def run_cell(client, code: str, timeout: float = 60) -> str:
    msg_id = client.execute(code)
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)
    raise TimeoutError(code)


@pytest.mark.slow
def test_job_progress_reaches_the_widgets_on_the_kernel_thread(tmp_path):
    manager, client = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        run_cell(client, textwrap.dedent(SETUP.format(data=str(tmp_path / "data"))))
        time.sleep(2.5)  # the kernel is idle while the job runs and finishes
        report = json.loads(run_cell(client, REPORT).strip().splitlines()[-1])
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    main = report["main"]
    assert report["job_threads"] and main not in report["job_threads"]  # the job ran elsewhere
    # the bar and the stage moved while it ran, once per burst (0.3 s), not once per event:
    # 410 progress events became a few dozen widget changes at most
    assert 4 <= len(report["changed"]) <= 40, len(report["changed"])
    assert report["bar"] == 100 and report["stage"] == "Completed"  # the last event shown
    assert set(report["changed"]) == {main}  # ...every change on the kernel's thread
    assert report["finished"] == [[main, "completed"]]
