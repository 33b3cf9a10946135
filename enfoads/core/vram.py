"""The VRAM/RAM manager: owns every model, keeps what fits resident, evicts the least recently used.

``with manager.use("sdxl") as pipe:`` loads the model (or moves it back to the GPU) and pins it
while the block runs. When the GPU budget is short, idle models leave the GPU in LRU order: to
host RAM while the RAM budget allows, otherwise they are dropped and reloaded from the on-disk
cache next time. On a machine without a GPU every model lives in RAM under the RAM budget.
Adapters hide how each kind of model moves: torch modules and diffusers pipelines, ONNX Runtime
sessions (recreated with other providers) and CTranslate2 models (faster-whisper).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from enfoads.core import events
from enfoads.core.errors import ModelTooLarge, ModelUnavailable, NotFound

log = logging.getLogger(__name__)
GPU, CPU = "cuda", "cpu"


class Adapter(Protocol):
    def to_device(self, model: Any, device: str) -> Any:
        """Move (or rebuild) the model on ``device``; return the object to use from now on."""

    def measure(self, model: Any) -> int | None:
        """Bytes the model really takes once loaded, or None to keep the estimate."""

    def release(self, model: Any) -> None:
        """Free what the model holds before the manager forgets it."""


def stop_background_work(adapter: Adapter, model: Any) -> None:
    """An adapter's optional ``stop(model)``: end the background work on a model (the image
    model's compile), which may hold it pinned, before the studio closes. Called outside the
    manager's lock, since that work unpins the model as it ends."""
    stop = getattr(adapter, "stop", None)
    if stop is not None:
        stop(model)


class TorchAdapter:
    """``torch.nn.Module`` or a diffusers/transformers pipeline (anything with ``.to()``)."""

    def to_device(self, model: Any, device: str) -> Any:
        moved = model.to(device)
        return model if moved is None else moved

    def measure(self, model: Any) -> int | None:
        import torch

        modules = (
            [model]
            if isinstance(model, torch.nn.Module)
            else [
                c
                for c in getattr(model, "components", {}).values()
                if isinstance(c, torch.nn.Module)
            ]
        )
        seen: set[int] = set()
        total = 0
        for module in modules:
            for tensor in list(module.parameters()) + list(module.buffers()):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    total += tensor.numel() * tensor.element_size()
        return total or None

    def release(self, model: Any) -> None:
        pass


class CTranslate2Adapter:
    """A CTranslate2 model, or faster-whisper's ``WhisperModel`` (whose ``.model`` is one).

    CTranslate2 keeps a GPU model's weights in RAM with ``unload_model(to_cpu=True)`` and
    brings them back with ``load_model()``; it cannot change a model's device otherwise.
    """

    @staticmethod
    def _ct2(model: Any) -> Any:
        return getattr(model, "model", model)

    def to_device(self, model: Any, device: str) -> Any:
        ct2 = self._ct2(model)
        if device == CPU and ct2.device != CPU:
            ct2.unload_model(to_cpu=True)
        elif device == GPU and not ct2.model_is_loaded:
            ct2.load_model()
        return model

    def measure(self, model: Any) -> int | None:
        return None

    def release(self, model: Any) -> None:
        self._ct2(model).unload_model()


@dataclass
class _Entry:
    name: str
    loader: Callable[[], Any]
    adapter: Adapter
    size: int
    estimate: Callable[[], int] | None = None  # evaluated once, at first use
    model: Any = None
    where: str | None = None
    last_used: float = 0.0
    in_use: int = 0
    loads: int = 0
    loading: bool = False  # a thread runs its loader now (outside the manager's lock)
    reserved: str | None = None  # the room booked for it on that device while it loads


def resolve_device(choice: str) -> str:
    """``auto`` means the GPU when torch sees one. Imports torch: call it only when needed."""
    if choice != "auto":
        return choice
    try:
        import torch
    except ImportError:
        return CPU
    return GPU if torch.cuda.is_available() else CPU


class ModelManager:
    """Every model of the studio, within a GPU budget and a host-RAM budget. Thread-safe."""

    def __init__(
        self,
        *,
        device: str | Callable[[], str],
        gpu_budget_bytes: int,
        ram_budget_bytes: int,
        bus: events.EventBus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._device = device
        self.gpu_budget = int(gpu_budget_bytes)
        self.ram_budget = int(ram_budget_bytes)
        self._bus = bus
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._cond = threading.Condition(threading.RLock())

    @property
    def device(self) -> str:
        if callable(self._device):
            self._device = self._device()
        return self._device

    def register(
        self,
        name: str,
        loader: Callable[[], Any],
        size_bytes: int | Callable[[], int],
        adapter: Adapter | None = None,
    ) -> None:
        """Declare a model: how to load it (on CPU) and how big it is expected to be.

        ``size_bytes`` may be a function, called at first use: a size that depends on the
        device (fp16 on GPU, fp32 on CPU) is then known before anything is loaded.
        """
        with self._cond:
            old = self._entries.get(name)
            if old is not None and old.model is not None:
                raise ValueError(f"model {name!r} is loaded; unload it before registering again")
            lazy = size_bytes if callable(size_bytes) else None
            self._entries[name] = _Entry(
                name,
                loader,
                adapter or TorchAdapter(),
                0 if lazy else int(size_bytes),
                estimate=lazy,
            )

    def is_registered(self, name: str) -> bool:
        return name in self._entries

    @contextmanager
    def use(self, name: str) -> Iterator[Any]:
        """The model, resident on the manager's device and pinned until the block ends."""
        with self._cond:
            entry = self._entry(name)
            target = self.device
            if entry.estimate is not None:
                entry.size, entry.estimate = int(entry.estimate()), None
            self._check_fits(entry, target)
            entry.in_use += 1  # pinned from now on: nobody evicts it while we make room
            try:
                while entry.where != target and not self._make_room(entry, target):
                    self._cond.wait()  # other threads hold the models that would have to go
                while entry.loading:  # another thread loads it: wait for that load
                    self._cond.wait()
                if entry.model is None:
                    self._load_unlocked(entry, target)
                self._bring(entry, target)
            except BaseException:
                entry.in_use -= 1
                self._cond.notify_all()
                raise
            entry.last_used = self._clock()
        try:
            yield entry.model
        finally:
            with self._cond:
                entry.in_use -= 1
                entry.last_used = self._clock()
                self._cond.notify_all()

    @contextmanager
    def use_if_resident(self, name: str) -> Iterator[Any]:
        """The model pinned until the block ends if it is loaded on the manager's device now;
        else None (nothing is loaded or moved: background work that only makes sense while
        the model is there, such as compiling it)."""
        with self._cond:
            entry = self._entry(name)
            model = entry.model if entry.where == self.device and not entry.loading else None
            if model is not None:
                entry.in_use += 1
        try:
            yield model
        finally:
            if model is not None:
                with self._cond:
                    entry.in_use -= 1
                    self._cond.notify_all()

    def unload(self, name: str) -> None:
        """Drop a model from GPU and RAM (it reloads from disk when next used)."""
        with self._cond:
            entry = self._entry(name)
            if entry.in_use:
                raise ValueError(f"model {name!r} is in use")
            self._drop(entry)
            self._after_change(gpu_freed=True)

    def unload_all(self) -> None:
        with self._cond:
            loaded = [(e.adapter, e.model) for e in self._entries.values() if e.model is not None]
        for adapter, model in loaded:  # a compile holding its model pinned ends first
            try:
                stop_background_work(adapter, model)
            except Exception:  # the rest must unload anyway
                log.exception("stopping the background work on a model failed")
        with self._cond:
            for entry in self._entries.values():
                if not entry.in_use:
                    self._drop(entry)
            self._after_change(gpu_freed=True)

    # -- bookkeeping -------------------------------------------------------------------
    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound("model", name)
        return entry

    def _used(self, where: str) -> int:
        return sum(
            e.size for e in self._entries.values() if e.where == where or e.reserved == where
        )

    def _budget(self, where: str) -> int:
        return self.gpu_budget if where == GPU else self.ram_budget

    def _check_fits(self, entry: _Entry, target: str) -> None:
        if entry.size > self._budget(target):
            raise ModelTooLarge(
                entry.name, entry.size, self._budget(target), "GPU" if target == GPU else "RAM"
            )

    def _make_room(self, entry: _Entry, target: str) -> bool:
        """Evict idle models (LRU) until ``entry`` fits on ``target``; False if it cannot yet."""
        need = entry.size
        free = (
            self._budget(target) - self._used(target) + (entry.size if entry.where == target else 0)
        )
        if free >= need:
            return True
        idle = sorted(
            (
                e
                for e in self._entries.values()
                if e.where == target and e is not entry and not e.in_use
            ),
            key=lambda e: e.last_used,
        )
        if free + sum(e.size for e in idle) < need:
            return False
        for victim in idle:
            if free >= need:
                break
            free += victim.size
            if target == GPU:
                self._offload_to_cpu_or_drop(victim, arriving=entry)
            else:
                self._drop(victim)
        self._after_change(gpu_freed=target == GPU)
        return True

    def _offload_to_cpu_or_drop(self, victim: _Entry, arriving: _Entry) -> None:
        # A model moving from RAM to the GPU frees its RAM for the one it displaces (a swap).
        ram_free = (
            self.ram_budget - self._used(CPU) + (arriving.size if arriving.where == CPU else 0)
        )
        if ram_free < victim.size:
            # Older CPU residents make way for a more recently used model.
            older = sorted(
                (
                    e
                    for e in self._entries.values()
                    if e.where == CPU
                    and not e.in_use
                    and e is not arriving
                    and e.last_used <= victim.last_used
                ),
                key=lambda e: e.last_used,
            )
            for e in older:
                if ram_free >= victim.size:
                    break
                if ram_free + sum(o.size for o in older if o.where == CPU) < victim.size:
                    break
                ram_free += e.size
                self._drop(e)
        if ram_free >= victim.size:
            log.info("offloading %s to CPU", victim.name)
            victim.model = victim.adapter.to_device(victim.model, CPU)
            victim.where = CPU
        else:
            self._drop(victim)

    def _load_unlocked(self, entry: _Entry, target: str) -> None:
        """Run the loader (a download, minutes on first use) with the lock released, so
        ``stats()`` and other models' users never wait for it; its room stays booked on
        ``target`` meanwhile. Called holding the lock once; returns holding it."""
        entry.loading, entry.reserved = True, target
        self._cond.release()
        try:
            if target == GPU:
                release_torch_cache()  # loaders that build on the GPU (faster-whisper)
            log.info("loading %s", entry.name)
            model = entry.loader()
        except (ModelUnavailable, ModelTooLarge):
            raise
        except (OSError, ValueError, ImportError, RuntimeError) as exc:
            raise ModelUnavailable(entry.name, f"{type(exc).__name__}: {exc}"[:400]) from exc
        finally:
            self._cond.acquire()
            entry.loading, entry.reserved = False, None
            self._cond.notify_all()
        entry.loads += 1
        entry.model, entry.where = model, CPU  # loaders build on CPU first
        measured = entry.adapter.measure(model)
        if measured:
            entry.size = measured
        try:
            self._check_fits(entry, target)
        except ModelTooLarge:
            self._drop(entry)
            raise
        if target == CPU:
            self._trim(CPU, keep=entry)  # the measured size may exceed the estimate
        self._after_change(gpu_freed=False)

    def _bring(self, entry: _Entry, target: str) -> None:
        if entry.where == target:
            return
        if entry.model is None:
            self._load_unlocked(entry, target)
        if target == GPU:
            log.info("moving %s to the GPU", entry.name)
            entry.where = None  # it leaves RAM as it enters the GPU
            if not self._make_room(entry, GPU):
                log.warning("%s is larger than estimated; the GPU budget is exceeded", entry.name)
            release_torch_cache()
            entry.model = entry.adapter.to_device(entry.model, GPU)
        entry.where = target
        self._after_change(gpu_freed=False)

    def _trim(self, where: str, keep: _Entry) -> None:
        """Evict idle LRU models from ``where`` until its budget holds (after a measured load)."""
        idle = sorted(
            (
                e
                for e in self._entries.values()
                if e.where == where and e is not keep and not e.in_use
            ),
            key=lambda e: e.last_used,
        )
        for victim in idle:
            if self._used(where) <= self._budget(where):
                break
            self._drop(victim)

    def _drop(self, entry: _Entry) -> None:
        if entry.model is None:
            return
        log.info("dropping %s from %s", entry.name, entry.where)
        try:
            entry.adapter.release(entry.model)
        finally:
            entry.model, entry.where = None, None
            gc.collect()

    def _after_change(self, gpu_freed: bool) -> None:
        if gpu_freed:
            release_torch_cache()
        if self._bus is not None:
            self._bus.publish(events.gpu_status(self.stats(with_devices=False)))

    # -- reporting ---------------------------------------------------------------------
    def stats(self, *, with_devices: bool = True) -> dict[str, Any]:
        """What ``/gpu-status`` shows: budgets, use, each model's place, device totals."""
        with self._cond:
            models = [
                {
                    "name": e.name,
                    "where": e.where,
                    "bytes": e.size,
                    "in_use": e.in_use,
                    "loads": e.loads,
                    "last_used": e.last_used,
                }
                for e in self._entries.values()
            ]
            out: dict[str, Any] = {
                "device": self.device,
                "gpu_budget_bytes": self.gpu_budget,
                "ram_budget_bytes": self.ram_budget,
                "gpu_used_bytes": self._used(GPU),
                "ram_used_bytes": self._used(CPU),
                "models": models,
            }
        if with_devices:
            out["devices"] = device_totals()
        return out


def release_torch_cache() -> None:
    """Give the blocks torch's allocator keeps cached (an image job's activations: gigabytes)
    back to the driver. ONNX Runtime and CTranslate2 allocate with their own allocators, so on a
    T4 a face swap or whisper after images found the card full of torch's cache (measured:
    ``benchmarks/t4_session.py --mixed --t4-free``). Imports no torch."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def device_totals() -> dict[str, Any]:
    """GPU totals from torch (when already imported) or NVML, and host RAM. Imports no torch."""
    gpus: list[dict[str, Any]] = []
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            gpus.append(
                {
                    "index": i,
                    "name": torch.cuda.get_device_name(i),
                    "total_bytes": total,
                    "used_bytes": total - free,
                    "allocated_bytes": torch.cuda.memory_allocated(i),
                }
            )
    else:
        try:
            import pynvml

            pynvml.nvmlInit()
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
                name = pynvml.nvmlDeviceGetName(handle)
                gpus.append(
                    {
                        "index": i,
                        "name": name if isinstance(name, str) else name.decode(),
                        "total_bytes": mem.total,
                        "used_bytes": mem.used,
                    }
                )
        except Exception:  # noqa: BLE001 - no NVIDIA driver: no GPU to report
            pass
    return {"gpus": gpus, "ram": host_ram()}


def host_ram() -> dict[str, int]:
    info: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            if key in ("MemTotal", "MemAvailable"):
                info[key] = int(value.split()[0]) * 1024
    except OSError:
        return {}
    return {
        "total_bytes": info.get("MemTotal", 0),
        "used_bytes": info.get("MemTotal", 0) - info.get("MemAvailable", 0),
    }
