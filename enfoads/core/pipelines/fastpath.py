"""Compiled speed without waiting for the compile, and batches that fit the memory left.

**No job waits for a compile.** ``torch.compile`` of SDXL's UNet and VAE decoder takes about
two minutes per shape on an H100 and more on a Colab VM's two cores, and every placement and
batch size is its own shape. So jobs run the eager pipeline for any shape that is not ready
yet, and ask a background thread to ready it. That thread works only while no job runs (the
queue is idle), holds the model pinned in the VRAM manager meanwhile (so nothing evicts it
halfway), and never makes a job wait: a job that arrives meanwhile runs eager while the compile
pauses for it (``CompiledPath``: "A compile gives way to jobs"). Once a
shape is ready, the next job at that shape runs its runner: in the studio one CUDA graph per
shape for the whole image (``image.ImageGraph``), over a compiled twin of the pipeline that
shares every weight with the eager one (no second copy of the model).

**Warm across sessions.** After each ready shape, torch's portable cache artifacts
(``torch.compiler.save_cache_artifacts``: Inductor's graphs, Triton kernels, autotuning) and the
list of shapes are written into the data dir (on Drive in Colab), keyed by torch version and
GPU; the next session loads them before its first compile, which then skips Inductor's code
generation, and readies the previous session's shapes as soon as the queue is idle.

**Batches that fit.** Each placement's peak activation memory per image is measured on its
first image (``torch.cuda.max_memory_allocated``), and the rest of a batch is split into
chunks that fit the memory left under the studio's GPU budget and the device's free memory.
Images depend only on their own seed, so a split batch gives the same pictures.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from enfoads.core.errors import is_out_of_memory

log = logging.getLogger(__name__)

Shape = tuple[int, int, int]  # width, height, batch
# Python 3.12+ can set a profile hook on a running thread: the compiling thread's hook is then
# set only while an image generates beside it (a hook on every call slows a compile 2-3×).
ALL_THREADS = hasattr(threading, "setprofile_all_threads")


class _Routing(threading.local):
    busy = False


_ROUTING = _Routing()


class _ThreadStderr:
    """``sys.stderr`` for every thread, except that what the compiling threads write (Inductor's
    autotune tables, Triton's "No valid triton configs" complaints) goes to the studio's log
    at DEBUG, line by line, never into the user's notebook cell."""

    def __init__(self, under: Any):
        self.under = under
        self.threads: set[int] = set()
        self._partial: dict[int, str] = {}

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        if ident not in self.threads or _ROUTING.busy:  # a handler's own complaint: as is
            return self.under.write(text)
        lines = (self._partial.pop(ident, "") + text).split("\n")
        if lines[-1]:
            self._partial[ident] = lines[-1]
        _ROUTING.busy = True
        try:
            for line in lines[:-1]:
                if line.strip():
                    log.debug("compile: %s", line.rstrip()[:500])
        finally:
            _ROUTING.busy = False
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty... as the stream's
        return getattr(self.under, name)


class _FromCompileThreads(logging.Filter):
    """On the handlers torch's logging puts on its loggers: records of a compiling thread go
    to the studio's log at DEBUG instead."""

    def __init__(self, threads: set[int]):
        super().__init__()
        self.threads = threads

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread not in self.threads or not record.name.startswith("torch"):
            return True
        if _ROUTING.busy:  # already on its way to the studio's log
            return False
        _ROUTING.busy = True
        try:
            log.debug("compile: %s: %s", record.name, record.getMessage()[:500])
        finally:
            _ROUTING.busy = False
        return False


_QUIET_LOCK = threading.Lock()


@contextmanager
def compile_output_to_log() -> Iterator[None]:
    """While the calling thread compiles: its stderr writes and torch's log records go to the
    studio's log, and Inductor prints no autotune tables. Other threads are untouched."""
    ident = threading.get_ident()
    with _QUIET_LOCK:
        if not isinstance(sys.stderr, _ThreadStderr):
            sys.stderr = _ThreadStderr(sys.stderr)
        router = sys.stderr
        router.threads.add(ident)
        loggers = logging.root.manager.loggerDict.items()
        handlers = {  # torch's logging gives many of its loggers a stderr handler of their own
            id(h): h
            for name, logger in loggers
            if (name == "torch" or name.startswith("torch.")) and isinstance(logger, logging.Logger)
            for h in logger.handlers
        }.values()
        quiet = _FromCompileThreads(router.threads)
        for handler in handlers:
            handler.addFilter(quiet)
        try:
            from torch._inductor import select_algorithm

            printed, select_algorithm.PRINT_AUTOTUNE = select_algorithm.PRINT_AUTOTUNE, False
        except ImportError:  # an Inductor without it: nothing printed to hide
            select_algorithm, printed = None, None
    try:
        yield
    finally:
        with _QUIET_LOCK:
            router.threads.discard(ident)
            for handler in handlers:
                handler.removeFilter(quiet)
            if not router.threads:
                if select_algorithm is not None:
                    select_algorithm.PRINT_AUTOTUNE = printed
                if sys.stderr is router:  # the stream as it was, once no thread compiles
                    sys.stderr = router.under


# How much less CPU time the compiling thread asks for than a job's (a Unix nice value): its
# Python work and the compile workers it starts (which inherit it) yield the cores to a job's
# kernel launches and image storing whenever both want them.
COMPILE_NICE = 10


def lower_priority(nice: int = COMPILE_NICE) -> int:
    """This thread (and the processes it starts) at ``nice`` more than now; the nice value
    reached, or the unchanged one where the system does not allow it."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return 0
    tid = threading.get_native_id()  # on Linux a thread's own priority, not the process's
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + nice))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as exc:
        log.debug("compile priority unchanged: %s", exc)
        return 0


class CompileCancelled(Exception):
    """Raised in the compiling thread by its profile hook once the path is closed."""


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


def shapes_file(cache: Path) -> Path:
    """The shapes a session readied, beside its compile cache."""
    return cache.with_name(cache.stem.replace("artifacts-", "shapes-") + ".json")


def load_shapes(cache: Path) -> list[Shape]:
    """The shapes a previous session readied with this cache (none if unreadable)."""
    try:
        rows = json.loads(shapes_file(cache).read_text())
        return [(int(w), int(h), int(b)) for w, h, b in rows]
    except (OSError, ValueError, TypeError):
        return []


def save_shapes(cache: Path, shapes: list[Shape]) -> None:
    """Add ``shapes`` to the remembered ones (temp file + rename)."""
    known = load_shapes(cache)
    rows = known + [s for s in shapes if s not in known]
    path = shapes_file(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps([list(s) for s in rows]))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def twin(pipe: Any) -> Any:
    """A second pipeline object over the same weights, with its own (stateful) scheduler and
    its own VAE object (whose ``decode`` may be replaced without touching the original)."""
    other = copy.copy(pipe)
    other.scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
    other.vae = copy.copy(pipe.vae)  # shares the decoder's modules and parameters
    return other


class CompiledPath:
    """The eager pipeline, its compiled twin, and the background thread that readies shapes.

    ``pipe_for(shape)`` is what a job generates with: the shape's runner once it is ready,
    else the eager pipeline (and the shape is queued for the background thread).
    ``compile_fn(pipe)`` turns the twin's modules into compiled ones (``torch.compile``);
    ``build(twin, shape)`` compiles the twin at ``shape`` (its first calls) and returns what
    jobs at that shape generate with (the studio's ``ImageGraph``: one CUDA graph per shape);
    ``pin()`` holds the model in the VRAM manager while a compile runs, or says it is gone;
    ``on_compiled(shape)`` runs after each (the portable cache is saved there);
    ``others_busy()`` says whether other jobs run in this process (no compile starts then).

    **A compile gives way to jobs.** A job that arrives while a shape compiles would share the
    interpreter with it: each of the eager pipeline's thousands of GPU calls lets go of the
    GIL, and the compiling thread then keeps it for up to the switch interval (5 ms), so an
    eager image took 12 s instead of 0.45 on an H100 (``benchmarks/image.py``). So the
    compiling thread gets a profile hook that pauses it, at its next Python call, while an
    image generates (``generating``), and lets it go on afterwards; never while it holds
    ``lock`` (the runners' replays wait on that one). On Python 3.12+ the hook is set only
    while an image generates; before 3.12 it stays on for the whole compile (slower).
    """

    def __init__(
        self,
        eager: Any,
        compile_fn: Callable[[Any], None],
        build: Callable[[Any, Shape], Any],
        pin: Callable[[], Any],
        on_compiled: Callable[[Shape], None] | None = None,
        others_busy: Callable[[], bool] = lambda: False,
        idle_wait_s: float = 0.5,
        lock: Any = None,
    ):
        self.eager = eager
        self.lock = lock if lock is not None else threading.Lock()
        self.pauses = 0  # times the compile gave way to a job
        self.max_pause_s = 60.0
        self._compiler = 0  # the compiling thread's id
        self._hooked = False  # the all-threads hook is set (Python 3.12+)
        self.fast = twin(eager)
        compile_fn(self.fast)
        self._build, self._pin, self._on_compiled = build, pin, on_compiled
        self._others_busy = others_busy  # other jobs of this process (a face swap, a video)
        self.runners: dict[Shape, Any] = {}
        self.failed: dict[Shape, str] = {}
        self.compiling: Shape | None = None
        self._wanted: list[Shape] = []
        self._busy = 0  # image generations running now
        self._closed = False
        self._idle_wait_s = idle_wait_s
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="enfoads-compile", daemon=True)
        self._thread.start()
        # A process that ends without closing (a kernel shut down, a script's last line) stops
        # the compile first: a daemon thread inside Inductor or a CUDA graph capture when the
        # interpreter finalizes was the H100's segfault at exit.
        atexit.register(self.close)

    # -- what jobs call -------------------------------------------------------------------
    def ready(self, shape: Shape) -> bool:
        with self._cond:
            return shape in self.runners

    def pipe_for(self, shape: Shape) -> Any:
        """The shape's runner when it is ready; else the eager pipeline, and the shape goes
        on the background thread's list."""
        with self._cond:
            if shape in self.runners:
                return self.runners[shape]
            self.want(shape, first=True)
            return self.eager

    def want(self, shape: Shape, first: bool = False) -> None:
        """Ready ``shape`` in the background when the queue is idle: ``first`` when a job
        asked for it, else after the others (a shape a previous session used)."""
        with self._cond:
            if shape in self.runners or shape in self.failed or shape == self.compiling:
                return
            if self._closed or (shape in self._wanted and not first):
                return
            if shape in self._wanted:
                self._wanted.remove(shape)
            self._wanted.insert(0 if first else len(self._wanted), shape)
            self._cond.notify_all()

    @contextmanager
    def generating(self) -> Iterator[None]:
        """Around a job's generation: the background thread starts no compile meanwhile."""
        with self._cond:
            self._busy += 1
            if self._busy == 1 and self.compiling is not None and ALL_THREADS:
                threading.setprofile_all_threads(self._give_way_in_compiler)
                self._hooked = True
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                if self._busy == 0 and self._hooked:
                    threading.setprofile_all_threads(None)
                    self._hooked = False
                self._cond.notify_all()

    def close(self, timeout: float = 60.0) -> None:
        """Stop compiling and drop the twins; a compile in progress is cancelled at its next
        Python call (``CompileCancelled``) and the background thread is waited for (up to
        ``timeout`` s), so nothing compiles or captures while the process tears CUDA down."""
        atexit.unregister(self.close)
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self.runners.clear()  # their graphs' memory goes with the model
            if self.compiling is not None and ALL_THREADS and not self._hooked:
                threading.setprofile_all_threads(self._give_way_in_compiler)
                self._hooked = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the background compile did not stop within %.0f s", timeout)
        with self._cond:
            if self._hooked and self._busy == 0:
                threading.setprofile_all_threads(None)
                self._hooked = False

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
            self.runners.pop(shape, None)
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

    def _give_way_in_compiler(self, frame: Any, event: str, arg: Any) -> None:
        """Set on every thread while an image generates beside a compile: gone at once from
        the others, ``_give_way`` in the compiling one."""
        if threading.get_ident() != self._compiler:
            sys.setprofile(None)
            return
        self._give_way(frame, event, arg)

    def _give_way(self, frame: Any, _event: str, _arg: Any) -> None:
        """The compiling thread's profile hook: at a Python call or return, wait while an
        image generates. Never while this thread holds ``lock`` or is importing a module
        (the job may need either), nor for other jobs (they may need the memory this thread
        pins), and at most ``max_pause_s`` at a time. Once closed, the compile is cancelled
        here (``CompileCancelled``), never inside an import or under ``lock``."""
        if not (self._busy or self._closed) or self.lock.locked():
            return
        while frame is not None:
            if frame.f_code.co_filename.startswith("<frozen importlib"):
                return
            frame = frame.f_back
        if self._closed:
            raise CompileCancelled("the studio is closing")
        self.pauses += 1
        deadline = time.monotonic() + self.max_pause_s
        with self._cond:
            while self._busy and not self._closed and time.monotonic() < deadline:
                self._cond.wait(self._idle_wait_s)

    def _compile(self, shape: Shape) -> tuple[str | None, Any]:
        """Compile ``shape`` with the model pinned: (None, its runner), or (why not, None):
        ``model not resident``, ``cancelled`` (closing), or the failure (logged)."""
        try:
            with self._pin() as model:
                if model is None:  # unloaded meanwhile: compile when it is back
                    return "model not resident", None
                self._compiler = threading.get_ident()
                if not ALL_THREADS:  # always on: Python < 3.12 cannot add it later
                    sys.setprofile(self._give_way)
                try:
                    with compile_output_to_log():  # never the user's notebook cell
                        return None, self._build(self.fast, shape)
                finally:
                    sys.setprofile(None)
        except Exception as exc:  # jobs keep the eager path (logged)
            if isinstance(exc, CompileCancelled) or self._closed:  # maybe wrapped by Dynamo
                log.info("compile of %dx%d batch %d cancelled: closing", *shape)
                return "cancelled", None
            log.warning(
                "compiling %s failed (%s): that shape stays eager",
                shape,
                failure_reason(exc),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return failure_reason(exc), None

    def _run(self) -> None:
        lower_priority()
        while True:
            shape = self._next()
            if shape is None:
                break
            started = time.perf_counter()
            error, runner = self._compile(shape)
            with self._cond:
                self.compiling = None
                if error is None and not self._closed:  # a build that only compiles: the twin
                    self.runners[shape] = runner if runner is not None else self.fast
                elif error not in ("model not resident", "cancelled"):
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
        with self._cond:  # the twin and the graphs (their memory pool) go with the model
            self.fast = None
            self.runners.clear()
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


def process_fraction() -> float:
    """The share of the GPU this process may take (``set_per_process_memory_fraction``)."""
    import torch

    get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    return get_fraction() if get_fraction is not None else 1.0


def cuda_available_bytes(held: int = 0) -> int:
    """What a new allocation may take on the current GPU: the device's free memory plus what
    torch's allocator holds unused, and never past the process's cap
    (``torch.cuda.set_per_process_memory_fraction``: a T4's size on a bigger card). ``held``:
    unused bytes that only CUDA graphs may use (their private pool)."""
    import torch

    free, total = torch.cuda.mem_get_info()
    fraction = process_fraction()
    allocated = torch.cuda.memory_allocated()
    in_pool = torch.cuda.memory_reserved() - allocated  # reusable without asking the driver
    return max(0, min(free + in_pool, int(total * fraction) - allocated) - held)


def graph_room(model_budget: int) -> int:
    """How much the CUDA graphs' pool may hold: half of what the GPU (under the process's cap)
    leaves beyond the models' budget; the other half is for eager activations and the other
    capabilities' work. A T4 (15 GB, 12 GiB for models) has room for no 1024² graph; an H100
    keeps every placement's."""
    import torch

    if not torch.cuda.is_available():
        return 0
    usable = int(torch.cuda.get_device_properties(0).total_memory * process_fraction())
    return max(0, usable - model_budget) // 2


# A shape's whole-image graph keeps every buffer of its 4 steps and decode: measured on an
# H100, 2.55-2.8 GiB per 1024²-sized image (2.74 GB at 1216×832, 5.61 GiB at 1024² batch 2,
# 11.15 GB at batch 4), of which later shapes reuse much (6 placements: 5.72 GB in all).
GRAPH_BYTES_PER_PIXEL = int(2.8 * 2**30 / 2**20)
# The graphs' room (half of what the models' budget leaves) a GPU needs for ``compile=auto``:
# a compile holds a 1024² image's activations (about 2 GiB, measured under a T4's cap) beside
# a job's, and Inductor's own buffers. A T4 (15 GB, 12 GiB for models) has 1.4 GiB: there a
# compile beside jobs made them run out of memory (docs/benchmarks.md); an L4 has 5.
COMPILE_MIN_ROOM = 4 * 2**30


def graph_fits(pool: Any, shape: Shape, room: int) -> bool:
    """Whether the graph of ``shape`` (its estimated memory, less what the pool holds unused)
    keeps the graphs' pool within ``room``."""
    width, height, batch = shape
    reserved, unused = pool_bytes(pool)
    need = GRAPH_BYTES_PER_PIXEL * width * height * batch
    return reserved + max(0, need - unused) <= room


def compile_fits(model_budget: int) -> bool:
    """Whether this GPU leaves room to compile beside jobs (``compile`` = auto)."""
    return graph_room(model_budget) >= COMPILE_MIN_ROOM


def pool_bytes(pool: Any) -> tuple[int, int]:
    """A CUDA-graph memory pool's reserved bytes and those of them not in use: memory only
    the graphs may use, which torch's counters still show as reusable."""
    import torch

    if not torch.cuda.is_available():
        return 0, 0
    owned = [s for s in torch.cuda.memory_snapshot() if tuple(s["segment_pool_id"]) == tuple(pool)]
    reserved = sum(s["total_size"] for s in owned)
    return reserved, reserved - sum(s["allocated_size"] for s in owned)


def failure_reason(exc: BaseException) -> str:
    """What made a compiled run fail, in a few words for the log and ``failed``."""
    if is_out_of_memory(exc):
        return "out of memory"
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


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
