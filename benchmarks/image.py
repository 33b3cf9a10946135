"""Benchmark: our SDXL-Lightning pipeline against stock diffusers, in the same run.

Full-size SDXL architecture with random weights (the real model's speed and memory), fp16,
4 steps, Euler trailing, guidance 0. Both pipelines share the same weights and are called
through the studio's own ``generate()``:

- ``stock``: diffusers as shipped: fp16 UNet with SDPA, the SDXL VAE upcast to fp32 to decode.
- ``ours-eager``: the fp16-fix VAE decoding in fp16, fused QKV, channels-last (no compile:
  what every shape runs until its compiled twin is ready).
- ``ours``: what the studio does on a GPU (``fastpath.CompiledPath``): a 3-placement job's
  first images run eager while a background thread compiles each shape (``torch.compile``)
  and captures its whole image as one CUDA graph (``ImageGraph``); then each graph's steady
  speed per placement, the prompt encoded once per job as the studio does. torch's portable
  compile cache and the list of shapes go to ``--cache-dir``: run the script twice for the
  warm-cache numbers (the second run readies the first one's shapes as soon as it is idle).

    python benchmarks/image.py --out docs/benchmarks/image.json     # on a GPU machine

JSON: ``first_images_s`` (cold or warm cache: each placement's first image and the job's
total), ``compiled_after_s`` (from the job's start until every shape is compiled),
``ms_per_image`` (per config, placement and batch) and ``ratios_vs_stock``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import run_record, write_json

SIDE = 1024  # 1024² (``--smoke``: 64², the tiny architecture on the CPU)


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gb(reset: bool = False) -> float:
    import torch

    if not torch.cuda.is_available():
        return 0.0
    value = torch.cuda.max_memory_allocated() / 1024**3
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return round(value, 2)


def measure(pipe, batch: int, iters: int, steps: int = 4) -> dict:
    """1024² at ``batch``: the first call, then the steady median (``steady``)."""
    from enfoads.core.pipelines.image import generate

    sync()
    peak_gb(reset=True)
    t0 = time.perf_counter()
    generate(pipe, "a red sneaker on a beach, product photo", SIDE, SIDE, list(range(batch)), steps)
    sync()
    first = time.perf_counter() - t0
    per_image = steady(pipe, SIDE, SIDE, batch, iters, steps)
    return {
        "batch": batch,
        "ms_per_image": per_image,
        "ms_per_call": round(per_image * batch, 1),
        "first_call_s": round(first, 2),
        "peak_gpu_gb": peak_gb(),
    }


PLACEMENTS = {
    "1:1": (1024, 1024),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "4:5": (896, 1152),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
}


def steady(
    pipe, width: int, height: int, batch: int, iters: int, steps: int = 4, embeds=None
) -> float:
    """Median ms per image at one shape, after two warm-ups. ``embeds``: the prompt encoded
    once (a job's images), else each call encodes its own (stock's habit)."""
    from enfoads.core.pipelines.image import generate

    seeds = list(range(batch))
    for _ in range(2):
        generate(pipe, "warm", width, height, seeds, steps, embeds=embeds)
    times = []
    for i in range(iters):
        sync()
        t0 = time.perf_counter()
        text = f"a coffee cup on a wooden table {i}"
        generate(pipe, text, width, height, seeds, steps, embeds=embeds)
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return round(1000 * times[len(times) // 2] / batch, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--batches", default="1,4", help="stock and eager: batches at 1024²")
    parser.add_argument("--placements", default="1:1,9:16,16:9", help="the job's placements")
    parser.add_argument(
        "--compiled-batch4",
        action="store_true",
        help="also compile and time batch 4 at 1024² (about 2 more minutes)",
    )
    parser.add_argument("--configs", default="stock,ours-eager,ours")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".enfoads/compile-cache")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--dynamic",
        default="off",
        choices=["off", "auto", "on"],
        help="static shapes, torch's automatic dynamic shapes, or one dynamic compile",
    )
    parser.add_argument(
        "--scope",
        default="regional",
        choices=["regional", "whole"],
        help="compile the UNet's repeated blocks or the whole UNet (ENFOADS_COMPILE_SCOPE)",
    )
    parser.add_argument(
        "--autotune",
        default="auto",
        choices=["auto", "on", "off"],
        help="autotune the VAE decoder (ENFOADS_COMPILE_AUTOTUNE)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check the script on a CPU: tiny SDXL at 64², torch.compile's eager backend",
    )
    args = parser.parse_args()
    # Before torch is imported: Inductor reads its cache dir once.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(args.cache_dir / "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(args.cache_dir / "triton"))

    from contextlib import nullcontext

    import torch
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from enfoads.core.pipelines import fastpath
    from enfoads.core.pipelines.image import (
        ImageGraph,
        apply_eager_optimizations,
        build_runner,
        compile_pipeline,
        encode,
        generate,
        vae_compile_mode,
    )
    from enfoads.testing.sdxl import build_components, write_clip_tokenizer

    global SIDE
    if args.smoke:
        SIDE = 64
        placements_px = {k: (64, 64 + 32 * i) for i, k in enumerate(PLACEMENTS)}
        PLACEMENTS.update(placements_px)
    else:
        assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU (or --smoke)"
    batches = [int(b) for b in args.batches.split(",")]
    configs = args.configs.split(",")
    backend = "eager" if args.smoke else "inductor"
    t0 = time.perf_counter()
    parts = (
        build_components("tiny")
        if args.smoke
        else build_components("full", device="cuda", dtype=torch.float16)
    )
    tok_dir = Path("/tmp/enfoads-bench-tok")
    write_clip_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    pipe = StableDiffusionXLPipeline(tokenizer=tokenizer, tokenizer_2=tokenizer, **parts)
    pipe.scheduler = pipe.scheduler.__class__.from_config(
        pipe.scheduler.config, timestep_spacing="trailing"
    )
    pipe.set_progress_bar_config(disable=True)
    print(f"built full-size SDXL in {time.perf_counter() - t0:.1f}s", flush=True)

    results: dict[str, list[dict]] = {}
    ms_per_image: dict[str, dict[str, float]] = {}
    report: dict = {}
    for config in ("stock", "ours-eager"):
        if config == "ours-eager":
            pipe.vae.register_to_config(force_upcast=False)  # as the fp16-fix VAE's config
            apply_eager_optimizations(pipe)
        else:
            assert pipe.vae.config.force_upcast  # the SDXL base VAE as shipped
        if config not in configs:
            continue
        results[config] = []
        for batch in batches:
            row = measure(pipe, batch, args.iters)
            results[config].append(row)
            ms_per_image.setdefault(config, {})[f"1:1/b{batch}"] = row["ms_per_image"]
            print(config, row, flush=True)

    if "ours" in configs:
        cache = fastpath.cache_file(args.cache_dir)
        state = "warm" if cache.exists() else "cold"
        loaded = fastpath.load_cache(cache) if state == "warm" else False
        import threading

        lock = threading.Lock()
        pool = None if args.smoke else torch.cuda.graph_pool_handle()

        job_start = time.perf_counter()  # (reset when the job starts)
        job_running = threading.Event()  # the studio's queue: busy while a job runs
        job_running.set()

        def saved(shape) -> None:
            fastpath.save_cache(cache)
            fastpath.save_shapes(cache, [shape])
            if pool is not None:
                gb = round(fastpath.pool_bytes(pool)[0] / 2**30, 2)
                at = round(time.perf_counter() - job_start, 1)
                print("ready", shape, "at", at, "s; graph pool GB", gb, flush=True)

        fast = fastpath.CompiledPath(
            pipe,
            lambda p: compile_pipeline(
                p,
                backend=backend,
                dynamic={"off": False, "auto": None, "on": True}[args.dynamic],
                vae_mode=None if args.smoke else vae_compile_mode(args.autotune),
                scope=args.scope,
            ),
            lambda twin, shape: (
                ImageGraph(twin, *shape, 4, lock=lock, capture=False)
                if args.smoke
                else build_runner(twin, shape, 4, lock, pool)
            ),
            pin=lambda: nullcontext(pipe),
            on_compiled=saved,
            others_busy=job_running.is_set,
        )
        remembered = fastpath.load_shapes(cache)
        for shape in remembered:  # as the studio does: a previous session's shapes
            fast.want(shape)
        placements = args.placements.split(",")
        # The job: each placement's first image, as ImagePipeline.run makes it.
        sync()
        job_start = time.perf_counter()
        first: dict[str, float] = {}
        with fast.generating():
            embeds = encode(pipe, "a red sneaker on a beach, product photo")
            for placement in placements:
                width, height = PLACEMENTS[placement]
                t1 = time.perf_counter()
                target = fast.pipe_for((width, height, 1))
                generate(target, "", width, height, [1], 4, embeds=embeds)
                sync()
                first[placement] = round(time.perf_counter() - t1, 2)
        first["job_total"] = round(time.perf_counter() - job_start, 2)
        job_running.clear()
        print("first images", state, first, flush=True)
        # A job that arrives while the background thread compiles runs eager beside it.
        time.sleep(3)
        others = [p for p in PLACEMENTS if p not in placements]
        if others and fast.compiling is not None:
            width, height = PLACEMENTS[others[0]]
            t1 = time.perf_counter()
            with fast.generating():
                generate(pipe, "", width, height, [2], 4, embeds=embeds)
                sync()
            report["eager_image_during_compile_s"] = round(time.perf_counter() - t1, 2)
            print("an eager image while compiling", report["eager_image_during_compile_s"])
        if args.compiled_batch4:
            fast.pipe_for((SIDE, SIDE, 4))
        assert fast.wait_idle(3600), "compiling did not finish"
        compiled_after = round(time.perf_counter() - job_start, 1)
        print("every shape compiled after", compiled_after, "s; failed:", fast.failed, flush=True)
        peak0 = peak_gb(reset=True)
        ours = {}
        for placement in placements:
            width, height = PLACEMENTS[placement]
            if fast.ready((width, height, 1)):
                runner = fast.pipe_for((width, height, 1))
                ours[f"{placement}/b1"] = steady(runner, width, height, 1, args.iters, 4, embeds)
                print("ours", placement, ours[f"{placement}/b1"], "ms/image", flush=True)
        if args.compiled_batch4 and fast.ready((SIDE, SIDE, 4)):
            runner = fast.pipe_for((SIDE, SIDE, 4))
            ours["1:1/b4"] = steady(runner, SIDE, SIDE, 4, args.iters, 4, embeds)
            print("ours 1:1 b4", ours["1:1/b4"], "ms/image", flush=True)
        ms_per_image["ours"] = ours
        report.update(
            {
                "cache": state,
                "cache_loaded": loaded,
                "remembered_shapes": len(remembered),
                "ready_shapes": len(fast.runners),
                "graph_pool_gb": round(fastpath.pool_bytes(pool)[0] / 1024**3, 2) if pool else 0,
                "first_images_s": {state: first},
                "compiled_after_s": {state: compiled_after},
                "compile_failed": {str(k): v for k, v in fast.failed.items()},
                "peak_gpu_gb": {"ours_compile": peak0, "ours_steady": peak_gb()},
            }
        )
        fast.close()

    stock = ms_per_image.get("stock", {})
    report = run_record(
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (smoke)",
        torch=torch.__version__,
        compile={"dynamic": args.dynamic, "autotune": args.autotune, "scope": args.scope},
        results=results,
        ms_per_image=ms_per_image,
        ratios_vs_stock={
            c: {k: round(stock[k] / v, 2) for k, v in rows.items() if k in stock}
            for c, rows in ms_per_image.items()
            if c != "stock"
        },
        **report,
    )
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
