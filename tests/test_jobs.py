import threading

import pytest

from enfoads.core import events
from enfoads.core.db import create_engine, make_session_factory
from enfoads.core.errors import InvalidInput, JobStateError, NotFound
from enfoads.core.jobs import JobResult, JobState, JobStore, LocalJobQueue

TIMEOUT = 30


class Harness:
    def __init__(self, url, workers=1):
        self.bus = events.EventBus()
        self.events = []
        self.bus.subscribe(lambda e: self.events.append(e.to_dict()), "job_update")
        self.engine = create_engine(url)
        self.store = JobStore(make_session_factory(self.engine), self.bus)
        self.queue = LocalJobQueue(self.store, workers=workers, lang="en")

    def updates(self, job_id):
        return [e for e in self.events if e["id"] == job_id]


@pytest.fixture
def db_url(database_url):
    return database_url  # SQLite and PostgreSQL (conftest)


@pytest.fixture
def h(db_url):
    harness = Harness(db_url)
    yield harness
    harness.queue.shutdown()


def steps_handler(ctx):
    for i in range(1, 5):
        ctx.progress(i * 20, f"step {i}")
    return JobResult(("img_1",), {"n": ctx.params["n"]})


def test_states_and_progress_events_in_order(h):
    h.queue.register("steps", steps_handler)
    h.queue.start()
    job = h.queue.submit("steps", {"n": 3})
    done = h.queue.wait(job.id, TIMEOUT)
    assert done.state is JobState.COMPLETED
    assert done.progress == 100 and done.result_asset_ids == ("img_1",)
    assert done.result == {"n": 3}
    states = [e["state"] for e in h.updates(job.id)]
    assert states[0] == "queued" and states[1] == "running" and states[-1] == "completed"
    progress = [e["progress"] for e in h.updates(job.id)]
    assert progress == sorted(progress) and progress[-1] == 100
    assert [e["stage"] for e in h.updates(job.id)][2:6] == [f"step {i}" for i in range(1, 5)]
    assert done.started_at <= done.finished_at


# What the GPU's other allocators say when the card is full (ONNX Runtime's CUDA provider, from
# a face swap after image jobs on a T4-sized card; its arena; CTranslate2), as they say it.
GPU_FULL = [
    "[ONNXRuntimeError] : 1 : FAIL : Exception during initialization: /onnxruntime_src/onnx"
    "runtime/core/providers/cuda/cuda_call.cc:154 std::conditional_t<THRW, void, onnxruntime"
    "::common::Status> onnxruntime::CudaCall(ERRTYPE, ...) CUBLAS failure 3: the resource "
    "allocation failed ; GPU=0 ; hostname=vm ; expr=cublasCreate(&cublas_handle_);",
    "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running "
    "Conv node. Name:'Conv_12' Status Message: /onnxruntime_src/onnxruntime/core/framework/"
    "bfc_arena.cc:359 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, ...) "
    "Failed to allocate memory for requested buffer of size 1073741824",
    "CUDA failed with error out of memory",
]


@pytest.mark.parametrize("message", GPU_FULL)
def test_a_full_gpu_said_by_any_allocator_is_the_gpu_memory_error(h, message):
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    def full(ctx):
        raise Fail(message)

    h.queue.register("swap", full)
    h.queue.start()
    done = h.queue.wait(h.queue.submit("swap", {}).id, TIMEOUT)
    assert done.state is JobState.FAILED and done.error_code == "error.gpu_memory"
    assert "onnxruntime" not in done.error and "CUBLAS" not in done.error, done.error


def test_cancel_while_queued_and_while_running(h):
    started, release = threading.Event(), threading.Event()

    def blocking(ctx):
        started.set()
        while not release.wait(0.01):
            ctx.check_cancelled()  # what a pipeline does between steps
        return JobResult()

    h.queue.register("block", blocking)
    h.queue.start()
    running = h.queue.submit("block", {})
    queued = h.queue.submit("block", {})
    assert started.wait(TIMEOUT)
    assert h.queue.cancel(queued.id).state is JobState.CANCELLED
    h.queue.cancel(running.id)
    assert h.queue.wait(running.id, TIMEOUT).state is JobState.CANCELLED
    assert h.queue.get(queued.id).state is JobState.CANCELLED
    assert h.queue.get(running.id).error == "Cancelled by the user."
    with pytest.raises(JobStateError):
        h.queue.cancel(running.id)


def test_crashing_job_is_recorded_and_the_worker_survives(h):
    def crash(ctx):
        raise ZeroDivisionError("boom")

    def bad_input(ctx):
        raise InvalidInput("error.empty", field="prompt")

    h.queue.register("crash", crash)
    h.queue.register("bad", bad_input)
    h.queue.register("steps", steps_handler)
    h.queue.start()
    crashed = h.queue.wait(h.queue.submit("crash", {}).id, TIMEOUT)
    assert crashed.state is JobState.FAILED
    assert "ZeroDivisionError: boom" in crashed.error
    bad = h.queue.wait(h.queue.submit("bad", {}).id, TIMEOUT)
    assert bad.error == "The field 'prompt' is empty." and bad.error_code == "error.empty"
    ok = h.queue.wait(h.queue.submit("steps", {"n": 1}).id, TIMEOUT)
    assert ok.state is JobState.COMPLETED


def test_retry_of_failed_job(h):
    attempts = []

    def flaky(ctx):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time fails")
        return JobResult()

    h.queue.register("flaky", flaky)
    h.queue.start()
    first = h.queue.wait(h.queue.submit("flaky", {"x": 1}).id, TIMEOUT)
    assert first.state is JobState.FAILED
    second = h.queue.retry(first.id)
    assert second.retry_of == first.id and second.params == {"x": 1}
    assert h.queue.wait(second.id, TIMEOUT).state is JobState.COMPLETED
    with pytest.raises(JobStateError):
        h.queue.retry(second.id)


def test_unknown_job_and_kind(h):
    with pytest.raises(NotFound):
        h.queue.get("job_nope")
    with pytest.raises(NotFound):
        h.queue.submit("no-such-kind", {})


def test_restart_recovery_on_the_same_database(db_url):
    first = Harness(db_url)
    first.queue.register("steps", steps_handler)
    # A "dead process": jobs were recorded but its workers never finished them.
    running = first.store.create("steps", {"n": 1})
    first.store.transition(running.id, [JobState.QUEUED], state=JobState.RUNNING)
    waiting = first.store.create("steps", {"n": 2})

    second = Harness(db_url)
    second.queue.register("steps", steps_handler)
    second.queue.start()
    try:
        interrupted = second.queue.get(running.id)
        assert interrupted.state is JobState.FAILED
        assert "Interrupted" in interrupted.error
        assert second.queue.wait(waiting.id, TIMEOUT).state is JobState.COMPLETED
    finally:
        second.queue.shutdown()


def test_two_workers_run_two_jobs_at_once(db_url):
    h = Harness(db_url, workers=2)
    barrier = threading.Barrier(2, timeout=TIMEOUT)

    def meet(ctx):
        barrier.wait()  # only passes if both jobs run at the same time
        return JobResult()

    h.queue.register("meet", meet)
    h.queue.start()
    try:
        a, b = h.queue.submit("meet", {}), h.queue.submit("meet", {})
        assert h.queue.wait(a.id, TIMEOUT).state is JobState.COMPLETED
        assert h.queue.wait(b.id, TIMEOUT).state is JobState.COMPLETED
    finally:
        h.queue.shutdown()


def test_event_bus_unsubscribe_and_failing_handler():
    bus = events.EventBus()
    seen = []

    def broken(event):
        raise RuntimeError("bad widget")

    bus.subscribe(broken)
    unsubscribe = bus.subscribe(lambda e: seen.append(e.name))
    bus.publish(events.Event("a"))
    unsubscribe()
    bus.publish(events.Event("b"))
    assert seen == ["a"]
    assert events.job_update({"id": "j"}).to_dict() == {"event": "job_update", "id": "j"}


def test_a_first_model_load_says_how_much_has_downloaded(h, tmp_path, monkeypatch):
    """While a model downloads into the data dir the stage counts the GB; then it stops. The
    count comes from the process's own write counter: the models folder (on Drive in Colab)
    is never walked."""
    import os
    import time

    def no_walk(*_a, **_k):
        raise AssertionError("the models folder was walked")

    monkeypatch.setattr(os, "walk", no_walk)

    models = tmp_path / "models"
    models.mkdir()

    def load_then_work(ctx):
        ctx.progress(2, "loading")
        with ctx.watching_downloads(models, "SDXL", 6 * 1024**3, interval_s=0.05):
            with (models / "unet.safetensors.incomplete").open("wb") as f:
                for _ in range(8):  # 8 × 1 MB arriving
                    f.write(b"\0" * 1_000_000)
                    f.flush()
                    time.sleep(0.06)
        ctx.progress(50, "generating")
        time.sleep(0.2)  # nothing new arrives: no download stage any more
        return JobResult((), {})

    h.queue.register("load", load_then_work)
    h.queue.start()
    job = h.queue.submit("load", {})
    assert h.queue.wait(job.id, TIMEOUT).state is JobState.COMPLETED
    stages = [e["stage"] for e in h.updates(job.id)]
    downloading = [s for s in stages if s.startswith("Downloading SDXL: ")]
    assert downloading and downloading[-1].endswith(" MB of ~6.0 GB (first time only)")
    assert stages.index("generating") > stages.index(downloading[-1])
    assert not any(s.startswith("Downloading") for s in stages[stages.index("generating") :])
    progress = [e["progress"] for e in h.updates(job.id)]
    assert progress == sorted(progress)  # the stage changes, the progress never goes back


def test_a_job_past_its_time_limit_fails_clearly_and_frees_its_model(tmp_path):
    """Each kind has a limit from the settings; download time does not count; the message is
    in the user's language; the model it held is released."""
    import time

    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    s = load_settings(
        data_dir=tmp_path / "d",
        device="cpu",
        language="es",
        job_timeouts_s={"slow": 0.4, "download": 0.4},
    )
    with Studio(s) as st:
        st.models.register("toy", lambda: object(), 1000)

        def slow(ctx):
            with st.models.use("toy"):
                for i in range(40):
                    ctx.progress(i, "working")
                    time.sleep(0.05)
            return JobResult((), {})

        def download(ctx):
            with ctx.watching_downloads(tmp_path, "toy", 10**6, interval_s=0.05):
                time.sleep(0.6)  # the network's time, not the job's
            ctx.progress(50, "working")
            return JobResult((), {})

        st.jobs.register("slow", slow)
        st.jobs.register("download", download)
        started = time.monotonic()
        done = st.wait_job(st.jobs.submit("slow", {}).id, TIMEOUT)
        assert done.state is JobState.FAILED and done.error_code == "error.job_timeout"
        assert time.monotonic() - started < 1.5
        assert done.error.startswith("El trabajo superó su tiempo máximo (0 s) y se detuvo")
        models = {m["name"]: m for m in st.gpu_status()["models"]}
        assert models["toy"]["in_use"] == 0  # released: another job can take the GPU
        assert st.wait_job(st.jobs.submit("download", {}).id, TIMEOUT).state is JobState.COMPLETED
        # a kind's own limit comes from its JobSpec; the setting (JSON per kind) wins over it
        assert st.job_timeout("generate_image") == 900 and st.job_timeout("render_video") == 3600
        assert s.job_timeout("generate_image", 900) == 900 and s.job_timeout("x", None) == 3600


def test_stages_and_errors_show_in_the_language_of_now(tmp_path):
    """A job finished (or failed) in Spanish reads in English after a switch: in the API, the
    facade and the Home panel; a stage stored as plain text stays as it was."""
    from fastapi.testclient import TestClient

    from enfoads.core.errors import InvalidInput
    from enfoads.core.i18n import Reason
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio
    from enfoads.server.app import create_app

    s = load_settings(data_dir=tmp_path / "d", device="cpu", language="es")
    with Studio(s) as st:

        def bad(ctx):
            ctx.progress(10, ctx.t("stage.loading_model"))
            raise InvalidInput("error.invalid", field="tags", reason=Reason("reason.list_expected"))

        st.jobs.register("ok", lambda ctx: JobResult((), {}))
        st.jobs.register("bad", bad)
        done = st.wait_job(st.jobs.submit("ok", {}).id, TIMEOUT)
        failed = st.wait_job(st.jobs.submit("bad", {}).id, TIMEOUT)
        assert done.stage == "Completado"
        assert failed.error == "El campo 'tags' no es válido: se espera una lista."
        st.update_settings(language="en")
        with TestClient(create_app(st, token="")) as c:
            assert c.get(f"/api/jobs/{done.id}").json()["stage"] == "Completed"
            assert c.get(f"/api/jobs/{failed.id}").json()["error"] == (
                "The field 'tags' is not valid: a list expected."
            )
            listed = {j["id"]: j for j in c.get("/api/jobs").json()}
            assert listed[done.id]["stage"] == "Completed"
        assert st.get_job(done.id).localized("en").stage == "Completed"
        from enfoads.widgets.home import HomePanel

        home = HomePanel(st)
        rows = " ".join(row.children[0].value for row in home.jobs.children)
        assert "Completed" in rows and "Completado" not in rows
        home.close()
