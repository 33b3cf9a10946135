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
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import run_record, studio_pipe, write_json

T4_USABLE_GIB = 14.5
ALL = ["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]


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
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("enfoads.core.pipelines.fastpath").setLevel(logging.DEBUG)  # tracebacks

    import torch

    from enfoads.core.jobs import JobState
    from enfoads.core.pipelines import image as image_mod
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio
    from enfoads.testing.sdxl import build_components

    gib = 1024**3
    cuda = not args.smoke
    if cuda:
        assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU (or --smoke)"
    data = Path(tempfile.mkdtemp(prefix="enfoads-t4-"))
    settings = load_settings(
        data_dir=data,
        device="cuda" if cuda else "cpu",
        compile="on" if args.compile and cuda else "off",
        language="en",
        image_max_batch=4,
    )
    # Built on the GPU (random init would double the host RAM the studio itself needs), then
    # the cap: the session's steps run inside a T4's memory.
    parts = (
        build_components("full", device="cuda", dtype=torch.float16)
        if cuda
        else build_components("tiny")
    )
    if cuda:
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(args.cap_gib * gib / total, 0)
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

        def step(name: str, **params) -> None:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            job = studio.wait_job(studio.generate_images(**params).id, 1800)
            row = {
                "step": name,
                "state": job.state.value,
                "error": job.error or None,
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
            steps=steps,
            compiled=compiled,
            no_oom=no_oom,
        ),
    )
    return 0 if no_oom else 1


if __name__ == "__main__":
    sys.exit(main())
