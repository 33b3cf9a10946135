"""Compiled speed without waiting for the compile, and batches that fit the memory left.

**No job waits for a compile.** ``torch.compile`` of SDXL's UNet and VAE decoder takes about
two minutes per shape on an H100 and more on a Colab VM's two cores, and every placement and
batch size is its own shape. So jobs run the eager pipeline for any shape that is not compiled
yet, and ask a background thread to compile it. That thread works only while no image is being
generated (the queue is idle), holds the model pinned in the VRAM manager while it compiles (so
nothing evicts it halfway), and never makes a job wait: a job that arrives meanwhile runs eager
beside it. Once a shape is compiled, the next job at that shape runs the compiled modules.

The compiled modules live in separate pipeline objects (their own schedulers, which are
stateful) that share every weight with the eager pipeline: no second copy of the model.

**Warm across sessions.** After each compiled shape, torch's portable cache artifacts
(``torch.compiler.save_cache_artifacts``: Inductor's graphs, Triton kernels, autotuning) are
written into the data dir (on Drive in Colab), keyed by torch version and GPU; the next
session loads them before its first compile, which then skips Inductor's code generation.

**Batches that fit.** Each placement's peak activation memory per image is measured on its
first image (``torch.cuda.max_memory_allocated``), and the rest of a batch is split into
chunks that fit the memory left under the studio's GPU budget and the device's free memory.
Images depend only on their own seed, so a split batch gives the same pictures.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Shape = tuple[int, int, int]  # width, height, batch


def cache_file(cache_dir: Path) -> Path:
    """Where this machine's portable compile cache lives (one per torch version and GPU)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    name = "".join(c if c.isalnum() else "-" for c in f"{torch.__version__}-{gpu}")
    return cache_dir / f"artifacts-{name}.bin"


def load_cache(path: Path) -> bool:
    """Hot-load a previous session's compile artifacts (before any compile); False if none."""
    import torch

    try:
        data = path.read_bytes()
    except OSError:
        return False
    try:
        torch.compiler.load_cache_artifacts(data)
    except Exception as exc:  # noqa: BLE001 - a stale or damaged cache only costs a compile
        log.warning("compile cache %s not loaded (%s): compiling from scratch", path.name, exc)
        return False
    log.info("compile cache loaded: %s (%.1f MB)", path.name, len(data) / 1e6)
    return True


def save_cache(path: Path) -> int:
    """Write the compile artifacts made so far (temp file + rename); their size in bytes."""
    import torch

    saved = torch.compiler.save_cache_artifacts()
    if not saved:
        return 0
    data = saved[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)


def twin(pipe: Any) -> Any:
    """A second pipeline object over the same weights, with its own (stateful) scheduler and
    its own VAE object (whose ``decode`` may be replaced without touching the original)."""
    other = copy.copy(pipe)
    other.scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
    other.vae = copy.copy(pipe.vae)  # shares the decoder's modules and parameters
    return other


class CompiledPath:
    """The eager pipeline, its compiled twins, and the background thread that compiles shapes.

    ``pipe_for(shape)`` is what a job generates with: the compiled twin once ``shape`` is
    compiled, else the eager pipeline (and the shape is queued for compiling).
    ``compile_fn(pipe)`` turns a twin's modules into compiled ones (``torch.compile``);
    ``warm_up(pipe, shape)`` runs one generation at ``shape`` (the compile happens there);
    ``pin()`` holds the model in the VRAM manager while a compile runs, or says it is gone;
    ``on_compiled(shape)`` runs after each (the portable cache is saved there);
    ``others_busy()`` says whether other jobs run in this process (no compile starts then).
    """

    def __init__(
        self,
        eager: Any,
        compile_fn: Callable[[Any], None],
        warm_up: Callable[[Any, Shape], None],
        pin: Callable[[], Any],
        on_compiled: Callable[[Shape], None] | None = None,
        others_busy: Callable[[], bool] = lambda: False,
        idle_wait_s: float = 0.5,
    ):
        self.eager = eager
        self.fast = twin(eager)
        compile_fn(self.fast)
        self.warm_pipe = twin(self.fast)  # the compiled modules; its own scheduler
        self.warm_pipe.unet = self.fast.unet
        self.warm_pipe.vae.decode = self.fast.vae.decode
        self._warm_up, self._pin, self._on_compiled = warm_up, pin, on_compiled
        self._others_busy = others_busy  # other jobs of this process (a face swap, a video)
        self.compiled: set[Shape] = set()
        self.failed: dict[Shape, str] = {}
        self.compiling: Shape | None = None
        self._wanted: list[Shape] = []
        self._busy = 0  # image generations running now
        self._closed = False
        self._idle_wait_s = idle_wait_s
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="enfoads-compile", daemon=True)
        self._thread.start()

    # -- what jobs call -------------------------------------------------------------------
    def ready(self, shape: Shape) -> bool:
        with self._cond:
            return shape in self.compiled

    def pipe_for(self, shape: Shape) -> Any:
        """The compiled twin when ``shape`` is compiled; else the eager pipeline, and the
        shape goes on the background thread's list."""
        with self._cond:
            if shape in self.compiled:
                return self.fast
            if shape not in self._wanted and shape not in self.failed and shape != self.compiling:
                self._wanted.append(shape)
                self._cond.notify_all()
            return self.eager

    @contextmanager
    def generating(self) -> Iterator[None]:
        """Around a job's generation: the background thread starts no compile meanwhile."""
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def close(self) -> None:
        """Stop compiling (a compile in progress finishes first) and drop the twins."""
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until nothing is left to compile (benchmarks and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._wanted or self.compiling is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- the background thread ----------------------------------------------------------
    def demote(self, shape: Shape, reason: str) -> None:
        """A compiled shape that failed in a job (out of memory on a small GPU, say) runs eager
        from now on."""
        with self._cond:
            self.compiled.discard(shape)
            self.failed[shape] = reason
        log.warning(
            "compiled %dx%d batch %d failed in a job (%s): eager from now on", *shape, reason
        )

    def _idle(self) -> bool:
        try:
            return not self._busy and not self._others_busy()
        except Exception:  # noqa: BLE001 - a closed database: wait and ask again
            return False

    def _next(self) -> Shape | None:
        with self._cond:
            while not self._closed and (not self._wanted or not self._idle()):
                self._cond.wait(self._idle_wait_s if self._wanted else None)
            if self._closed:
                return None
            self.compiling = self._wanted.pop(0)
            return self.compiling

    def _run(self) -> None:
        while True:
            shape = self._next()
            if shape is None:
                break
            error = None
            started = time.perf_counter()
            try:
                with self._pin() as model:
                    if model is None:  # unloaded meanwhile: compile when it is back
                        error = "model not resident"
                    else:
                        # The CUDA graphs recorded here are the ones jobs replay: a compiled
                        # function keeps the graphs of the thread that first ran it.
                        ensure_cudagraph_tls()
                        self._warm_up(self.warm_pipe, shape)
            except Exception as exc:  # noqa: BLE001 - jobs keep the eager path
                error = f"{type(exc).__name__}: {exc}"
                log.warning("compiling %s failed (%s): that shape stays eager", shape, error)
            with self._cond:
                self.compiling = None
                if error is None:
                    self.compiled.add(shape)
                elif error != "model not resident":
                    self.failed[shape] = error
                self._cond.notify_all()
            if error is None:
                log.info(
                    "compiled %dx%d batch %d in %.1f s (background)",
                    *shape,
                    time.perf_counter() - started,
                )
                if self._on_compiled is not None:
                    try:
                        self._on_compiled(shape)
                    except Exception as exc:  # noqa: BLE001 - a cache write is optional
                        log.warning("compile cache not saved: %s", exc)
        with self._cond:  # the twins (and their compiled graphs) go with the model
            self.fast = self.warm_pipe = None
            self._cond.notify_all()


class BatchPlanner:
    """How many images of a placement one call may generate, from measured memory.

    ``per_image[(w, h)]``: the peak activation bytes one image at that size took, measured on
    the device; ``available()``: the bytes a call may use now (free memory under the budget).
    """

    def __init__(self, available: Callable[[], int], margin: float = 1.15):
        self.available = available
        self.margin = margin
        self.per_image: dict[tuple[int, int], int] = {}

    def chunk(self, width: int, height: int, wanted: int) -> int:
        """The images the next call should make: 1 until the size is measured, then as many
        as fit (at least 1: a single image that does not fit fails with its own error)."""
        cost = self.per_image.get((width, height))
        if cost is None:
            return 1
        fits = int(self.available() / (cost * self.margin))
        return max(1, min(wanted, fits))

    def record(self, width: int, height: int, images: int, peak_extra: int) -> None:
        """A call of ``images`` at this size needed ``peak_extra`` bytes beyond what was
        allocated before it; the largest per-image cost seen is kept."""
        if images > 0 and peak_extra > 0:
            cost = -(-peak_extra // images)
            self.per_image[(width, height)] = max(cost, self.per_image.get((width, height), 0))


def cuda_available_bytes() -> int:
    """What a new allocation may take on the current GPU: the device's free memory plus what
    torch's allocator holds unused, and never past the process's cap
    (``torch.cuda.set_per_process_memory_fraction``: a T4's size on a bigger card)."""
    import torch

    free, total = torch.cuda.mem_get_info()
    get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    fraction = get_fraction() if get_fraction is not None else 1.0
    allocated = torch.cuda.memory_allocated()
    in_pool = torch.cuda.memory_reserved() - allocated  # reusable without asking the driver
    return max(0, min(free + in_pool, int(total * fraction) - allocated))


def failure_reason(exc: BaseException) -> str:
    """What made a compiled run fail, in a few words for the log and ``failed``."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return "out of memory"
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def ensure_cudagraph_tls() -> None:
    """Inductor keeps its CUDA-graph trees per thread, set up only in the thread that first
    imported it (and the autograd threads it spawns): a compiled run in another thread
    (the background compiler, a job's worker) fails an assertion there. Set this thread's up,
    as that module does at import (torch 2.11 to 2.13)."""
    import threading
    from collections import defaultdict

    import torch

    try:
        from torch._inductor import cudagraph_trees as trees
    except ImportError:  # a torch without Inductor: nothing to set up
        return
    if hasattr(trees.local, "tree_manager_containers"):
        return
    trees.local.tree_manager_containers = {}
    trees.local.tree_manager_locks = defaultdict(threading.Lock)
    stash = getattr(torch._C, "_stash_obj_in_tls", None)
    if stash is not None:  # copied into the autograd threads this thread starts
        stash("tree_manager_containers", trees.local.tree_manager_containers)
        stash("tree_manager_locks", trees.local.tree_manager_locks)


def free_cached_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def measured_peak(device: str) -> Iterator[list[int]]:
    """Yields a list that receives the peak bytes allocated beyond the start (CUDA only)."""
    out: list[int] = []
    if device != "cuda":
        yield out
        return
    import torch

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    yield out
    torch.cuda.synchronize()
    out.append(torch.cuda.max_memory_allocated() - before)
