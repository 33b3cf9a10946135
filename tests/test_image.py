"""Image creation through the Studio with a tiny random SDXL loaded by the real loading code."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from enfoads.core.errors import InvalidInput
from enfoads.core.jobs import JobState
from enfoads.core.pipelines import image as image_mod
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio

TIMEOUT = 300


@pytest.fixture
def img_studio(tmp_path, tiny_sdxl):
    s = load_settings(
        data_dir=tmp_path / "data",
        device="cpu",
        language="en",
        image_base_model=str(tiny_sdxl["base"]),
        image_unet_model=str(tiny_sdxl["unet"]),
        image_vae_model=str(tiny_sdxl["vae"]),
        image_max_batch=3,
    )
    with Studio(s) as st:
        yield st


def run(studio, **params):
    job = studio.generate_images(**params)
    done = studio.wait_job(job.id, TIMEOUT)
    assert done.state is JobState.COMPLETED, done.error
    return done


def pixels(studio, asset_id):
    return np.asarray(studio.assets.open_image(asset_id).convert("RGB"))


def test_loads_the_hub_layout_and_the_single_file_lightning_unet(img_studio, tiny_sdxl):
    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        assert pipe.scheduler.config.timestep_spacing == "trailing"
        assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
        state = load_file(str(tiny_sdxl["unet"] / "sdxl_lightning_4step_unet.safetensors"))
        name, tensor = next(iter(state.items()))
        assert torch.equal(pipe.unet.state_dict()[name], tensor)
        assert pipe.unet.dtype == torch.float32  # fp32 on CPU
        assert pipe.vae.config.force_upcast is False  # the fp16-fix VAE's config
    assert {m["name"] for m in img_studio.gpu_status()["models"]} >= {image_mod.MODEL_NAME}


def test_same_seed_same_pixels_and_other_seeds_differ(img_studio):
    a = run(img_studio, prompt="red sneakers on a beach", seed=1234)
    b = run(img_studio, prompt="red sneakers on a beach", seed=1234)
    c = run(img_studio, prompt="red sneakers on a beach", seed=99)
    pa, pb, pc = (pixels(img_studio, j.result_asset_ids[0]) for j in (a, b, c))
    assert np.array_equal(pa, pb)
    assert np.abs(pa.astype(int) - pc.astype(int)).mean() > 1


def test_every_placement_in_one_job_with_one_seed(img_studio):
    events = []
    img_studio.subscribe(lambda e: events.append(e.payload), "job_update")
    done = run(
        img_studio,
        prompt="café de especialidad",
        placements=list(image_mod.ASPECTS),
        seed=7,
        style="product",
    )
    assert len(done.result_asset_ids) == len(image_mod.ASPECTS)
    for info, (placement, (w, h)) in zip(done.result["images"], image_mod.ASPECTS.items()):
        asset = img_studio.get_asset(info["asset_id"])
        assert info["placement"] == placement and (asset.width, asset.height) == (w, h)
        assert asset.seed == 7 and asset.meta["placement"] == placement
        assert Image.open(img_studio.assets.file_path(asset)).size == (w, h)
    mine = [e for e in events if e["id"] == done.id]
    progress = [e["progress"] for e in mine]
    assert progress == sorted(progress) and progress[-1] == 100
    steps = [e["stage"] for e in mine if e["stage"].startswith("Generating")]
    assert steps[0] == "Generating 1:1 (1/4)" and steps[-1] == "Generating 3:2 (4/4)"
    assert len(steps) == 4 * len(image_mod.ASPECTS)


def test_batch_gives_consecutive_seeds(img_studio):
    done = run(img_studio, prompt="a bottle of olive oil", num_images=3, seed=10)
    assert [img["seed"] for img in done.result["images"]] == [10, 11, 12]
    images = [pixels(img_studio, a) for a in done.result_asset_ids]
    assert not np.array_equal(images[0], images[1])


def test_ai_generation_metadata_is_in_the_png(img_studio):
    done = run(img_studio, prompt="zapatillas rojas", seed=5, negative_prompt="blurry")
    asset = img_studio.get_asset(done.result_asset_ids[0])
    png = Image.open(img_studio.assets.file_path(asset))
    assert png.text["AI-Generated"] == "true"
    assert "trainedAlgorithmicMedia" in png.text["XML:com.adobe.xmp"]
    record = json.loads(png.text["enfoads"])
    assert record["prompt"] == "zapatillas rojas" and record["seed"] == 5
    assert record["job_id"] == done.id and record["model"] == "SDXL-Lightning (4 steps)"
    assert record["asset_id"] == asset.id and record["name"] == asset.name  # for a re-index
    assert record["models"][1] == "local:lightning/sdxl_lightning_4step_unet.safetensors"
    assert "/tmp" not in png.text["enfoads"]  # no local paths leak into shared files
    assert asset.model_ids == tuple(record["models"]) and asset.job_id == done.id
    assert img_studio.assets.thumbnail_path(asset).is_file()
    assert done.result["notices"] == [
        # the Spanish prompt reached SDXL as it was: the user is told why, and what to do
        "The prompt is in Spanish and the translator is not downloaded (no connection now); "
        "download it in Settings. SDXL understands English best.",
        "The negative prompt has no effect with SDXL-Lightning (guidance 0); it was ignored.",
    ]


@pytest.mark.parametrize("placement", ["1:1", "9:16"])
def test_cancel_mid_run_stores_nothing(img_studio, placement):
    """Cancelled in the first placement, or in the second, when the first one's image has
    already been stored while the second generated: the job keeps nothing."""

    def cancel_at_step_two(event):
        stage = event.payload.get("stage", "")
        if stage.endswith("(2/4)") and placement in stage:
            img_studio.cancel_job(event.payload["id"])

    img_studio.subscribe(cancel_at_step_two, "job_update")
    stored = []
    img_studio.subscribe(lambda event: stored.append(event.payload["id"]), "asset_added")
    job = img_studio.generate_images(prompt="sunglasses", placements=["1:1", "9:16"], seed=3)
    done = img_studio.wait_job(job.id, TIMEOUT)
    assert len(stored) == (placement == "9:16")  # the 1:1 image, stored as 9:16 generated
    assert done.state is JobState.CANCELLED
    assert done.progress < 95 and done.result_asset_ids == ()
    assert img_studio.list_assets().total == 0
    assert [p for p in img_studio.settings.assets_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n"}, "prompt"),
        ({"prompt": "x" * 1001}, "prompt"),
        ({"prompt": "ok", "width": 1020, "height": 1024}, "width"),
        ({"prompt": "ok", "width": 1024, "height": 4096}, "height"),
        ({"prompt": "ok", "num_images": 4}, "num_images"),
        ({"prompt": "ok", "num_images": 0}, "num_images"),
        ({"prompt": "ok", "style": "vaporwave"}, "style"),
        ({"prompt": "ok", "placements": ["5:4"]}, "placements[0]"),  # which one
        ({"prompt": "ok", "placements": []}, "placements"),
        ({"prompt": "ok", "seed": -1}, "seed"),
        ({"prompt": "ok", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_names_the_field(img_studio, params, field):
    with pytest.raises(InvalidInput) as err:
        img_studio.generate_images(**params)
    assert err.value.field == field and field in err.value.message("en")
    assert img_studio.list_jobs() == []


def test_custom_size_and_bad_input_in_a_retried_job_record(img_studio):
    done = run(img_studio, prompt="lamp", width=512, height=256, seed=1)
    asset = img_studio.get_asset(done.result_asset_ids[0])
    assert (asset.width, asset.height) == (512, 256)
    # Bad input is refused before anything is queued...
    before = len(img_studio.list_jobs())
    with pytest.raises(InvalidInput, match="The field 'prompt' is empty."):
        img_studio.submit("generate_image", {"prompt": "  "})
    assert len(img_studio.list_jobs()) == before
    # ...and a stored record that is no longer valid (an old one) is checked again on retry.
    old = img_studio.jobs.submit("generate_image", {"prompt": "lamp", "width": 300, "height": 256})
    assert img_studio.wait_job(old.id, TIMEOUT).state.finished
    with pytest.raises(InvalidInput, match="'width'"):
        img_studio.retry_job(old.id)


def test_missing_or_oversized_model_is_a_clear_job_error(tmp_path, monkeypatch):
    # Offline and not on disk: that is what the user hears first (see also the CPU test).
    s = load_settings(data_dir=tmp_path / "b", device="cpu", language="es", ram_budget_gb=20)
    with Studio(s) as st:
        failed = st.wait_job(st.generate_images(prompt="hola").id, TIMEOUT)
    assert failed.state is JobState.FAILED
    assert failed.error_code == "error.model_not_downloaded"
    assert "El modelo 'SDXL-Lightning' no está descargado" in failed.error
    # Online, full SDXL in fp32 (CPU) does not fit the Colab RAM budget: refused before any
    # download, also when the device is "auto" and resolves to the CPU.
    monkeypatch.setattr(image_mod, "hub_reachable", lambda: True)
    s = load_settings(data_dir=tmp_path / "a", device="auto", language="en")
    with Studio(s) as st:
        failed = st.wait_job(st.generate_images(prompt="hola").id, TIMEOUT)
    assert failed.state is JobState.FAILED and failed.error_code == "error.model_too_large"
    assert "does not fit the RAM budget (12.7 GB)" in failed.error


def test_model_table_lists_every_lightning_unet_and_the_licences():
    table = image_mod.MODEL_TABLE
    assert {f"lightning-{n}step" for n in (2, 4, 8)} <= set(table)
    for entry in table.values():
        assert entry.licence and entry.revision and entry.size_bytes > 0
        assert entry.filename is None or entry.filename.endswith(".safetensors")


@pytest.mark.gpu
def test_fp16_on_the_gpu_without_vae_upcast(tmp_path, tiny_sdxl):
    s = load_settings(
        data_dir=tmp_path,
        device="cuda",
        compile="off",
        image_base_model=str(tiny_sdxl["base"]),
        image_unet_model=str(tiny_sdxl["unet"]),
        image_vae_model=str(tiny_sdxl["vae"]),
    )
    with Studio(s) as st:
        done = st.wait_job(st.generate_images(prompt="shoe", seed=1).id, TIMEOUT)
        assert done.state is JobState.COMPLETED, done.error
        with st.models.use(image_mod.MODEL_NAME) as pipe:
            assert pipe.unet.dtype == torch.float16 and pipe.vae.dtype == torch.float16


def compiling_settings(tmp_path, tiny_sdxl, monkeypatch):
    """The tiny SDXL on the GPU with the compile on, its caches in the data dir only."""
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # as in a fresh process
        monkeypatch.delenv(var, raising=False)
    return load_settings(
        data_dir=tmp_path,
        device="cuda",
        compile="on",
        language="en",
        image_base_model=str(tiny_sdxl["base"]),
        image_unet_model=str(tiny_sdxl["unet"]),
        image_vae_model=str(tiny_sdxl["vae"]),
    )


@pytest.mark.gpu
def test_no_job_waits_for_the_compile_and_the_cache_travels_with_the_data_dir(
    tmp_path, tiny_sdxl, monkeypatch
):
    s = compiling_settings(tmp_path, tiny_sdxl, monkeypatch)
    stages = []
    with Studio(s) as st:
        st.subscribe(lambda e: stages.append((e.payload["id"], e.payload["stage"])), "job_update")
        first = st.wait_job(st.generate_images(prompt="shoe", seed=1).id, TIMEOUT)
        assert first.state is JobState.COMPLETED, first.error
        with st.models.use(image_mod.MODEL_NAME) as pipe:
            fast = pipe._enfoads_compiled
        assert fast.wait_idle(600) and fast.ready((1024, 1024, 1)), fast.failed
        again = st.wait_job(st.generate_images(prompt="shoe", seed=1).id, TIMEOUT)
        assert again.state is JobState.COMPLETED, again.error
        eager = [job for job, stage in stages if "optimizing in the background" in stage]
        assert set(eager) == {first.id}  # the first job ran eager, the second compiled
        a, b = (pixels(st, j.result_asset_ids[0]).astype(int) for j in (first, again))
        assert np.abs(a - b).mean() < 3  # the same picture (fp16 kernels differ slightly)
    assert list(s.compile_cache_dir.glob("artifacts-*.bin"))  # torch's portable cache


@pytest.mark.gpu
def test_a_second_session_readies_the_first_sessions_placements_before_any_job(
    tmp_path, tiny_sdxl, monkeypatch
):
    """Two sessions on one data dir: the first compiles a placement for its job; the second,
    started as the notebook starts it, has that placement compiled from the cache without
    any job, and its first job there runs compiled."""
    s = compiling_settings(tmp_path, tiny_sdxl, monkeypatch)
    shape = (768, 1344, 1)
    with Studio(s) as st:
        done = st.wait_job(st.generate_images(prompt="shoe", seed=1, placements="9:16").id, TIMEOUT)
        assert done.state is JobState.COMPLETED, done.error
        with st.models.use(image_mod.MODEL_NAME) as pipe:
            fast = pipe._enfoads_compiled
        assert fast.wait_idle(600) and fast.ready(shape), fast.failed
    stages = []
    with Studio(s) as st:
        st.subscribe(lambda e: stages.append(e.payload["stage"]), "job_update")
        st.warm_start().join(300)
        with st.models.use_if_resident(image_mod.MODEL_NAME) as pipe:
            assert pipe is not None  # loaded at start, before any job
            fast = pipe._enfoads_compiled
        assert fast.wait_idle(300) and fast.ready(shape), fast.failed
        done = st.wait_job(st.generate_images(prompt="shoe", seed=1, placements="9:16").id, TIMEOUT)
        assert done.state is JobState.COMPLETED, done.error
        assert not [stage for stage in stages if "optimizing in the background" in stage]


def test_without_the_model_on_a_cpu_the_error_says_it_is_not_downloaded(tmp_path):
    """Offline, no GPU, no model on disk: the job says the model is missing (not that an fp32
    SDXL exceeds the RAM budget), in the user's language."""
    from enfoads.core.settings import load_settings

    s = load_settings(data_dir=tmp_path / "d", device="cpu", language="es")
    with Studio(s) as st:
        done = st.wait_job(st.generate_images(prompt="zapatillas rojas").id, 60)
    assert done.state.value == "failed" and done.error_code == "error.model_not_downloaded"
    assert "no está descargado" in done.error and "RAM" not in done.error


@pytest.mark.parametrize(
    ("setting", "cpus", "scope", "vae_mode"),
    [
        ("auto", 16, "whole", "max-autotune-no-cudagraphs"),  # an H100 server
        ("auto", 2, "regional", None),  # a Colab VM
        ("regional", 16, "regional", "max-autotune-no-cudagraphs"),
        ("whole", 2, "whole", None),
    ],
)
def test_what_compiles_follows_the_cpus_unless_set(monkeypatch, setting, cpus, scope, vae_mode):
    from enfoads.core import media as media_mod
    from enfoads.core.settings import load_settings

    # the CPUs this process may use decide (a container or taskset limited to 2 of the
    # machine's 16 compiles as a Colab VM does), not the machine's count
    monkeypatch.setattr(media_mod.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(media_mod.os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    chosen = load_settings(device="cpu", compile_scope=setting).compile_scope
    assert image_mod.compile_scope(chosen) == scope
    assert image_mod.vae_compile_mode("auto") == vae_mode


@pytest.mark.parametrize("scope", ["whole", "regional"])
def test_the_compiled_path_compiles_aside_and_never_makes_a_job_wait(img_studio, scope):
    """On the CPU with torch.compile's eager backend (the threading and switching are the
    real ones; Inductor and the CUDA-graph capture are what the GPU adds): a shape runs eager
    until its runner is ready aside, and the runner's whole-image loop (what the GPU captures
    as one graph) gives the eager pipeline's pictures bit for bit, the whole UNet compiled or
    only its repeated blocks."""
    import threading
    from contextlib import nullcontext

    from enfoads.core.pipelines.fastpath import CompiledPath

    shape = (64, 64, 2)
    built, started = [], threading.Event()
    lock = threading.Lock()

    def build(twin, shape):
        started.set()
        built.append(shape)
        return image_mod.ImageGraph(twin, *shape, 4, lock=lock, capture=False)

    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        fast = CompiledPath(
            pipe,
            lambda p: image_mod.compile_pipeline(p, backend="eager", scope=scope),
            build,
            pin=lambda: nullcontext(pipe),
            idle_wait_s=0.05,
        )
        assert fast.fast.unet is not pipe.unet and fast.fast.scheduler is not pipe.scheduler
        assert fast.fast.vae.decoder is pipe.vae.decoder  # the weights are shared, not copied

        def blocks(unet):
            return [m for m in unet.modules() if type(m).__name__ in image_mod.REGIONAL_BLOCKS]

        theirs = blocks(pipe.unet)
        assert {type(m).__name__ for m in theirs} == set(image_mod.REGIONAL_BLOCKS)
        assert all(m._compiled_call_impl is None for m in theirs)  # eager stays eager
        if scope == "regional":  # a copy of the module tree over the same tensors
            ours = blocks(fast.fast.unet)
            assert len(ours) == len(theirs) and not set(map(id, ours)) & set(map(id, theirs))
            assert all(m._compiled_call_impl is not None for m in ours)
            assert fast.fast.unet.conv_in.weight is pipe.unet.conv_in.weight
        with fast.generating():
            assert fast.pipe_for(shape) is pipe  # not ready: eager, and queued
            assert not started.wait(0.5) and fast.compiling is None  # not while generating
            eager = image_mod.generate(pipe, "a shoe", 64, 64, [3, 9], 4)
        assert fast.wait_idle(120) and fast.ready(shape) and built == [shape]
        graph = fast.pipe_for(shape)
        assert isinstance(graph, image_mod.ImageGraph)
        steps = []
        ours = image_mod.generate(
            graph, "a shoe", 64, 64, [3, 9], 4, on_step=lambda *a: steps.append(a)
        )
        assert steps == [(4, 4)]  # one replay holds every step
        for a, b in zip(eager, ours):
            assert np.array_equal(np.asarray(a), np.asarray(b))
        assert not np.array_equal(np.asarray(ours[0]), np.asarray(ours[1]))  # own seeds
        with pytest.raises(ValueError, match="2 images"):
            graph.generate([1], image_mod.encode(pipe, "a shoe"))
        assert pipe.vae.decode.__func__ is type(pipe.vae).decode  # the original is untouched
        fast.close()
        fast._thread.join(10)
        assert not fast._thread.is_alive() and fast.fast is None and not fast.runners


def test_a_previous_sessions_shapes_are_readied_after_the_ones_jobs_ask_for(tmp_path, img_studio):
    from contextlib import nullcontext

    from enfoads.core.pipelines import fastpath

    cache = tmp_path / "cc" / "artifacts-x.bin"
    assert fastpath.load_shapes(cache) == []
    fastpath.save_shapes(cache, [(1024, 1024, 1), (768, 1344, 1)])
    fastpath.save_shapes(cache, [(1024, 1024, 1), (1344, 768, 4)])
    assert fastpath.load_shapes(cache) == [(1024, 1024, 1), (768, 1344, 1), (1344, 768, 4)]
    fastpath.shapes_file(cache).write_text("{not json")
    assert fastpath.load_shapes(cache) == []  # a damaged list only costs the head start
    assert not list(cache.parent.glob(".*.tmp"))

    order = []
    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        fast = fastpath.CompiledPath(
            pipe,
            lambda p: None,
            lambda twin, shape: order.append(shape),
            pin=lambda: nullcontext(pipe),
            idle_wait_s=0.05,
        )
        with fast.generating():  # nothing starts while a job generates
            fast.want((1, 1, 1))
            fast.want((2, 2, 1))
            assert fast.pipe_for((3, 3, 1)) is pipe  # a job's own shape goes first
        assert fast.wait_idle(30)
        assert order == [(3, 3, 1), (1, 1, 1), (2, 2, 1)]
        assert fast.pipe_for((1, 1, 1)) is fast.fast  # a build that returns nothing: the twin
        fast.close()


def test_a_failed_compile_leaves_the_shape_eager(img_studio):
    from contextlib import nullcontext

    from enfoads.core.pipelines.fastpath import CompiledPath

    def broken(_twin, _shape):
        raise RuntimeError("inductor exploded")

    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        fast = CompiledPath(
            pipe, lambda p: None, broken, pin=lambda: nullcontext(pipe), idle_wait_s=0.05
        )
        assert fast.pipe_for((64, 64, 1)) is pipe
        assert fast.wait_idle(30)
        assert "inductor exploded" in fast.failed[(64, 64, 1)]
        assert fast.pipe_for((64, 64, 1)) is pipe and not fast._wanted  # not retried forever
        fast.close()


def _endless_compile(started, marks):
    """A build that stands in for a long Inductor compile: Python calls until cancelled."""
    import time

    def build(_twin, _shape):
        started.set()
        try:
            while True:
                time.sleep(0.01)
        finally:
            marks.append("unwound")  # the compile's own cleanup ran

    return build


def test_closing_cancels_a_compile_in_progress_and_waits_for_its_thread():
    import threading
    import time
    from contextlib import nullcontext

    from diffusers import EulerDiscreteScheduler

    from enfoads.core.pipelines.fastpath import CompiledPath

    started, marks = threading.Event(), []
    eager = SimpleNamespace(scheduler=EulerDiscreteScheduler(), vae=SimpleNamespace())
    fast = CompiledPath(
        eager,
        lambda p: None,
        _endless_compile(started, marks),
        pin=lambda: nullcontext(eager),
        idle_wait_s=0.05,
    )
    fast.want((64, 64, 1))
    assert started.wait(30) and fast.compiling == (64, 64, 1)
    began = time.monotonic()
    fast.close(timeout=30)
    assert time.monotonic() - began < 10  # cancelled, not waited out
    assert not fast._thread.is_alive() and marks == ["unwound"]
    assert fast.compiling is None and not fast.failed  # a cancel is no failure
    assert fast.pipe_for((64, 64, 1)) is eager  # closed: eager, nothing queued again
    assert not fast._wanted


def test_closing_the_studio_stops_a_compile_that_holds_the_model_pinned(img_studio):
    """The compile pins the image model in the VRAM manager, which unloads only unpinned
    models: ``Studio.close()`` stops the compile first (seen on an H200: the compile thread
    was still alive after close, and only the exit stopped it)."""
    import threading

    from enfoads.core.pipelines.fastpath import CompiledPath

    started, marks = threading.Event(), []
    models = img_studio.models
    with models.use(image_mod.MODEL_NAME) as pipe:
        fast = CompiledPath(
            pipe,
            lambda p: None,
            _endless_compile(started, marks),
            pin=lambda: models.use_if_resident(image_mod.MODEL_NAME),
            idle_wait_s=0.05,
        )
        pipe._enfoads_compiled = fast
    fast.want((64, 64, 1))
    assert started.wait(30)
    img_studio.close()
    assert not fast._thread.is_alive() and marks == ["unwound"]
    rows = {m["name"]: m for m in models.stats(with_devices=False)["models"]}
    assert rows[image_mod.MODEL_NAME]["where"] is None  # unloaded, not kept by the pin


def test_a_process_that_ends_without_closing_stops_its_compile_first(tmp_path):
    """The H100's segfault at exit: a daemon thread still compiling while the interpreter
    finalized. Now an exit cancels the compile and waits for the thread (atexit)."""
    import subprocess
    import sys
    import textwrap

    marks = tmp_path / "marks.txt"
    script = textwrap.dedent(
        f"""
        import threading, time
        from contextlib import nullcontext
        from types import SimpleNamespace
        from diffusers import EulerDiscreteScheduler
        from enfoads.core.pipelines.fastpath import CompiledPath

        started = threading.Event()

        def build(_twin, _shape):
            started.set()
            try:
                while True:
                    time.sleep(0.01)
            finally:
                open({str(marks)!r}, "a").write("unwound\\n")

        eager = SimpleNamespace(scheduler=EulerDiscreteScheduler(), vae=SimpleNamespace())
        fast = CompiledPath(eager, lambda p: None, build, pin=lambda: nullcontext(eager))
        fast.want((64, 64, 1))
        assert started.wait(30)
        print("compiling", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "compiling" in done.stdout and "Traceback" not in done.stderr
    assert marks.read_text() == "unwound\n"  # the thread unwound before the interpreter went


def test_batches_are_split_to_the_measured_memory_left():
    from enfoads.core.pipelines.fastpath import BatchPlanner

    free = [10 * 2**30]
    planner = BatchPlanner(lambda: free[0], margin=1.0)
    assert planner.chunk(1024, 1024, 4) == 1  # the first image measures the size
    planner.record(1024, 1024, 1, 3 * 2**30)  # one image needed 3 GiB at its peak
    assert planner.chunk(1024, 1024, 4) == 3  # 10 GiB left: three at a time
    free[0] = 2 * 2**30
    assert planner.chunk(1024, 1024, 4) == 1  # never zero: one image says its own error
    planner.record(1024, 1024, 2, 4 * 2**30)  # a smaller per-image cost never lowers it
    assert planner.per_image[(1024, 1024)] == 3 * 2**30
    assert planner.chunk(768, 1344, 4) == 1  # another size is measured on its own


def test_a_prompt_goes_through_the_text_encoders_once_per_job(img_studio, monkeypatch):
    calls = []
    real = image_mod.encode
    monkeypatch.setattr(
        image_mod, "encode", lambda pipe, text: calls.append(text) or real(pipe, text)
    )
    done = run(
        img_studio, prompt="red sneaker", seed=3, num_images=2, placements=["1:1", "9:16", "16:9"]
    )
    assert len(done.result_asset_ids) == 6 and calls == ["red sneaker"]


def test_pictures_are_rounded_to_bytes_as_diffusers_does():
    """The device-side conversion gives diffusers' own PIL pixels, bit for bit."""
    from diffusers.image_processor import VaeImageProcessor

    decoded = (
        torch.rand(3, 3, 40, 56, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1
    ).half()
    processor = VaeImageProcessor()  # what the pipeline hands back for output_type "pt" / "pil"
    ours = [
        np.asarray(i) for i in image_mod.to_pil(processor.postprocess(decoded, output_type="pt"))
    ]
    theirs = [np.asarray(i) for i in processor.postprocess(decoded, output_type="pil")]
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs)) and ours[0].shape == (40, 56, 3)


@pytest.mark.gpu
def test_the_memory_left_respects_the_process_cap():
    from enfoads.core.pipelines.fastpath import cuda_available_bytes

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(0.5)
    try:
        held = torch.empty(2**28, dtype=torch.uint8, device="cuda")  # 256 MiB
        left = cuda_available_bytes()
        assert 0 < left <= total * 0.5 - held.numel()
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)


def test_no_compile_starts_while_other_jobs_run(img_studio):
    import threading
    from contextlib import nullcontext

    from enfoads.core.pipelines.fastpath import CompiledPath

    others = threading.Event()
    others.set()  # a face swap runs in this process
    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        fast = CompiledPath(
            pipe,
            lambda p: None,
            lambda twin, shape: None,
            pin=lambda: nullcontext(pipe),
            others_busy=others.is_set,
            idle_wait_s=0.05,
        )
        fast.pipe_for((64, 64, 1))
        assert not fast.wait_idle(0.5) and fast.compiling is None  # waits for idle
        others.clear()
        assert fast.wait_idle(30) and fast.ready((64, 64, 1))
        fast.close()


def test_a_compiled_shape_that_fails_in_a_job_falls_back_to_eager(img_studio, monkeypatch):
    """On a small GPU the compiled graphs' own buffers may not fit (or a compiled run fails
    another way): the job still completes (eager), and that shape stays eager."""
    import threading
    from contextlib import nullcontext

    import torch.nn as nn

    from enfoads.core.pipelines.fastpath import CompiledPath

    class OutOfMemoryUNet(nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.inner = unet
            self.config, self.dtype, self.device = unet.config, unet.dtype, unet.device
            self.add_embedding = unet.add_embedding

        def forward(self, *args, **kwargs):
            raise RuntimeError("CUDA out of memory. Tried to allocate 1.50 GiB")

    made = {}

    def fast_path(self, pipe):
        if "fast" not in made:

            def compile_fn(twin):
                twin.unet = OutOfMemoryUNet(pipe.unet)

            made["fast"] = CompiledPath(
                pipe,
                compile_fn,
                lambda twin, shape: None,
                pin=lambda: nullcontext(pipe),
                idle_wait_s=0.05,
            )
            lock = threading.Lock()  # as if compiled earlier
            made["fast"].runners[(1024, 1024, 1)] = image_mod.ImageGraph(
                made["fast"].fast, 1024, 1024, 1, 4, lock=lock, capture=False
            )
        return made["fast"]

    monkeypatch.setattr(image_mod.ImagePipeline, "fast_path", fast_path)
    done = run(img_studio, prompt="red sneaker", seed=4)
    assert len(done.result_asset_ids) == 1
    fast = made["fast"]
    assert fast.failed[(1024, 1024, 1)] == "out of memory" and not fast.ready((1024, 1024, 1))
    fast.close()


def test_a_compile_gives_way_while_an_image_generates_but_not_holding_the_lock(img_studio):
    """A job arriving mid-compile must not share the interpreter with it (an eager image took
    12 s instead of 0.45 beside a compile on an H100): the compiling thread pauses at its
    next call while an image generates, unless it holds the runners' lock."""
    import threading
    import time
    from contextlib import nullcontext

    from enfoads.core.pipelines.fastpath import CompiledPath

    progress, started = [], threading.Event()

    def work():
        for i in range(300):  # Python and C calls: the hook's chances to pause
            time.sleep(0.002)
            progress.append(i)

    def build(_twin, shape):
        started.set()
        if shape == (2, 2, 1):
            with fast.lock:  # a capture: no pause, a replay waits for this lock
                work()
        else:
            work()

    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        fast = CompiledPath(
            pipe, lambda p: None, build, pin=lambda: nullcontext(pipe), idle_wait_s=0.02
        )
        fast.want((1, 1, 1))
        assert started.wait(10)
        with fast.generating():
            time.sleep(0.1)
            paused_at = len(progress)
            time.sleep(0.4)
            assert len(progress) == paused_at < 300  # it waits for the image
        assert fast.wait_idle(30) and len(progress) == 300 and fast.pauses >= 1
        progress.clear()
        started.clear()
        fast.want((2, 2, 1))
        assert started.wait(10)
        with fast.generating():
            before = len(progress)
            time.sleep(0.3)
            assert len(progress) > before  # holding the lock: it goes on
        assert fast.wait_idle(30)
        fast.close()


def test_graphs_keep_to_their_share_of_a_t4_and_later_shapes_run_compiled_without_one(
    img_studio, monkeypatch
):
    """On a T4 (15 GiB, 12 for models) the graphs' pool may hold 1.5 GiB: no 1024² graph
    (about 2.8 GiB), and no compile by default (its jobs would run out of memory beside it);
    an H100 keeps every placement's graph. A shape whose graph does not fit runs the compiled
    twin without one, same pictures."""
    import threading
    from types import SimpleNamespace

    from enfoads.core.pipelines import fastpath

    gib = 2**30
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda: 1.0, raising=False)

    def gpu(total_gib):
        monkeypatch.setattr(
            torch.cuda,
            "get_device_properties",
            lambda _i: SimpleNamespace(total_memory=total_gib * gib),
        )

    pool = (0, 1)
    monkeypatch.setattr(fastpath, "pool_bytes", lambda _pool: (0, 0))  # no graph yet
    gpu(15)  # a T4
    assert fastpath.graph_room(12 * gib) == int(1.5 * gib)
    assert not fastpath.graph_fits(pool, (1024, 1024, 1), fastpath.graph_room(12 * gib))
    assert not fastpath.compile_fits(12 * gib)
    gpu(24)  # an L4
    assert fastpath.compile_fits(12 * gib)
    gpu(80)  # an H100
    room = fastpath.graph_room(12 * gib)
    assert room == 34 * gib and fastpath.compile_fits(12 * gib)
    assert fastpath.graph_fits(pool, (1024, 1024, 4), room)
    monkeypatch.setattr(fastpath, "pool_bytes", lambda _pool: (30 * gib, 0))
    assert not fastpath.graph_fits(pool, (1024, 1024, 4), room)  # the pool is nearly full
    monkeypatch.setattr(fastpath, "pool_bytes", lambda _pool: (30 * gib, 3 * gib))
    assert fastpath.graph_fits(pool, (1024, 1024, 1), room)  # reuses the pool's free blocks
    monkeypatch.undo()

    monkeypatch.setattr(fastpath, "pool_bytes", lambda _pool: (int(1.5 * gib), 0))  # pool full
    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        twin = fastpath.twin(pipe)
        runner = image_mod.build_runner(
            twin, (64, 64, 1), 4, threading.Lock(), pool=(0, 1), room=int(1.5 * gib)
        )
        assert runner is twin
        ours = image_mod.generate(runner, "a shoe", 64, 64, [5], 4)
        eager = image_mod.generate(pipe, "a shoe", 64, 64, [5], 4)
        assert np.array_equal(np.asarray(ours[0]), np.asarray(eager[0]))


def test_a_batch_that_runs_out_of_gpu_memory_is_split_and_a_single_image_says_so(
    img_studio, monkeypatch
):
    """The GPU's memory can shrink under a job (another capability, a compile): a batch that
    runs out of it is made in halves, same seeds, same pictures; one image that still does
    not fit fails with a clear error in the user's language, no allocator banner."""
    real = image_mod.generate
    calls = []

    def tight(pipe, prompt, width, height, seeds, *args, **kwargs):
        calls.append(len(seeds))
        if len(seeds) > limit:
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                "14.75 GiB of which 1.2 GiB is free."
            )
        return real(pipe, prompt, width, height, seeds, *args, **kwargs)

    whole = run(img_studio, prompt="a shoe", seed=7, num_images=3)
    monkeypatch.setattr(image_mod, "generate", tight)
    limit = 1
    split = run(img_studio, prompt="a shoe", seed=7, num_images=3)
    assert calls == [3, 1, 1, 1]  # 3 ran out of memory: 1 (half), then the 2 left, capped at 1
    assert len(split.result_asset_ids) == 3
    made = [pixels(img_studio, a).astype(int) for a in split.result_asset_ids]
    for a, b in zip(whole.result_asset_ids, made):  # (a batch's float sums differ slightly)
        assert np.abs(pixels(img_studio, a) - b).mean() < 0.5
    assert np.abs(made[0] - made[1]).mean() > 5  # each image its own seed

    limit = 0
    img_studio.update_settings(language="es")
    before = img_studio.assets.list().total
    job = img_studio.wait_job(
        img_studio.generate_images(prompt="a shoe", seed=7, num_images=2).id, TIMEOUT
    )
    assert job.state is JobState.FAILED and job.error_code == "error.gpu_memory"
    assert "memoria" in job.error and "GPU 0" not in job.error and "GiB" not in job.error
    assert img_studio.assets.list().total == before  # nothing half-made is stored


def test_a_warm_start_loads_the_model_and_wants_earlier_placements_before_any_job(
    tiny_settings, monkeypatch
):
    """A long-lived engine whose earlier sessions compiled placements loads the image model at
    start and hands those placements to its background compiler; the first job then uses that
    model (no second load) and the same compiled path. Nothing happens without remembered
    placements, where the model does not compile, or with ``ENFOADS_WARM_START=off``."""
    from enfoads.core.pipelines import fastpath

    settings = tiny_settings

    def loads(studio):
        (row,) = [
            m
            for m in studio.models.stats(with_devices=False)["models"]
            if m["name"] == image_mod.MODEL_NAME
        ]
        return row["loads"]

    made = []

    def fast_path(self, pipe):  # the compiled path's wiring, without compiling on a CPU
        if not made or made[-1][0] is not pipe:
            cache = fastpath.cache_file(self.settings.compile_cache_dir)
            made.append((pipe, fastpath.load_shapes(cache)))
        return None

    monkeypatch.setattr(image_mod.ImagePipeline, "fast_path", fast_path)
    with Studio(settings()) as st:  # a CPU does not compile: nothing to warm
        st.warm_start().join(30)
        assert loads(st) == 0 and not made
    monkeypatch.setattr(image_mod.ImagePipeline, "compiles", lambda self: True)
    with Studio(settings()) as st:  # compiles, but no earlier session left placements
        st.warm_start().join(30)
        assert loads(st) == 0 and not made
    s = settings()
    fastpath.save_shapes(
        fastpath.cache_file(s.compile_cache_dir), [(1024, 1024, 1), (768, 1344, 1)]
    )
    with Studio(settings(warm_start="off")) as st:
        assert st.warm_start() is None and loads(st) == 0
    with Studio(s) as st:
        thread = st.warm_start()
        assert st.warm_start() is None  # once per engine
        thread.join(120)
        assert loads(st) == 1  # before any job
        assert made == [(made[0][0], [(1024, 1024, 1), (768, 1344, 1)])]
        run(st, prompt="red sneaker", seed=4)
        assert loads(st) == 1 and len(made) == 1  # the job found the model and its path


def test_what_a_compile_prints_goes_to_the_studio_log_not_the_users_cell(capsys, caplog):
    """Inductor's autotune tables (written to stderr) and torch's log records from the
    compiling thread reach the studio's log at DEBUG; the same from another thread (a user's
    own output) still reaches stderr."""
    import logging
    import sys
    import threading

    import torch  # noqa: F401 - its logging handlers exist from here
    from torch._inductor import select_algorithm

    from enfoads.core.pipelines.fastpath import compile_output_to_log

    seen_flag = []

    def compiling():
        with compile_output_to_log():
            sys.stderr.write("AUTOTUNE mm(1024x1024)\n  triton_mm_1 0.0123 ms 100.0%\n")
            logging.getLogger("torch._inductor.select_algorithm").warning(
                "No valid triton configs. OutOfResources: out of resource: shared memory"
            )
            seen_flag.append(select_algorithm.PRINT_AUTOTUNE)

    with caplog.at_level(logging.DEBUG, logger="enfoads"):
        thread = threading.Thread(target=compiling)
        thread.start()
        thread.join()
        sys.stderr.write("the user's own line\n")
    err = capsys.readouterr().err
    assert "AUTOTUNE" not in err and "No valid triton configs" not in err
    assert "the user's own line" in err
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("enfoads"))
    assert "AUTOTUNE mm(1024x1024)" in logged and "No valid triton configs" in logged
    assert seen_flag == [False] and select_algorithm.PRINT_AUTOTUNE is True


def test_the_compile_runs_at_a_lower_priority_than_jobs(img_studio):
    """The background compile's thread (and the compile workers it starts, which inherit it)
    asks for less CPU than the job threads: a job's kernel launches and stores come first."""
    import os
    import threading
    from contextlib import nullcontext

    from enfoads.core.pipelines.fastpath import COMPILE_NICE, CompiledPath

    seen = []

    def build(_twin, _shape):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return None

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with img_studio.models.use(image_mod.MODEL_NAME) as pipe:
        fast = CompiledPath(
            pipe, lambda p: None, build, pin=lambda: nullcontext(pipe), idle_wait_s=0.05
        )
        fast.want((64, 64, 1))
        assert fast.wait_idle(30)
        fast.close()
    assert seen == [min(19, mine + COMPILE_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # jobs' own
