"""Benchmark: our SDXL-Lightning pipeline against stock diffusers, in the same run.

Full-size SDXL architecture with random weights (the real model's speed and memory), fp16,
1024×1024, 4 steps, Euler trailing, guidance 0, batch 1 and 4. Both pipelines share the same
weights and are called through the studio's own ``generate()``:

- ``stock``: diffusers as shipped: fp16 UNet with SDPA, the SDXL VAE upcast to fp32 to decode.
- ``ours-eager``: the fp16-fix VAE decoding in fp16, fused QKV, channels-last (no compile:
  what a T4 gets when compiling is switched off).
- ``ours``: the same plus ``torch.compile`` of the UNet and the VAE decoder, with Inductor's
  caches in ``--cache-dir``; run the script twice to see the warm-up with a warm cache.

    python benchmarks/image.py --out docs/image-bench.json          # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(pipe, batch: int, iters: int, steps: int = 4) -> dict:
    import torch

    from enfoads.core.pipelines.image import generate

    seeds = list(range(batch))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    generate(pipe, "a red sneaker on a beach, product photo", 1024, 1024, seeds, steps)
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    generate(pipe, "warm", 1024, 1024, seeds, steps)  # a second warm-up (allocator, autotune)
    times = []
    for i in range(iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        generate(pipe, f"a coffee cup on a wooden table {i}", 1024, 1024, seeds, steps)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    return {"batch": batch, "ms_per_image": round(1000 * median / batch, 1),
            "ms_per_call": round(1000 * median, 1), "first_call_s": round(first, 2),
            "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 1024**3, 2)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--configs", default="stock,ours-eager,ours")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".enfoads/compile-cache")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode for 'ours'")
    args = parser.parse_args()
    # Before torch is imported: Inductor reads its cache dir once.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(args.cache_dir / "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(args.cache_dir / "triton"))

    import torch
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from enfoads.core.pipelines.image import (COMPILE_MODE, apply_eager_optimizations,
                                              compile_pipeline)  # fmt: skip
    from enfoads.testing.sdxl import build_components, write_clip_tokenizer

    assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    batches = [int(b) for b in args.batches.split(",")]
    configs = args.configs.split(",")
    t0 = time.perf_counter()
    parts = build_components("full", device="cuda", dtype=torch.float16)
    tok_dir = Path("/tmp/enfoads-bench-tok")
    write_clip_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    pipe = StableDiffusionXLPipeline(tokenizer=tokenizer, tokenizer_2=tokenizer, **parts)
    pipe.scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config,
                                                          timestep_spacing="trailing")  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    print(f"built full-size SDXL in {time.perf_counter() - t0:.1f}s", flush=True)

    results: dict[str, list[dict]] = {}
    # Always in this order (each step changes the shared modules); --configs picks what is timed.
    for config in ("stock", "ours-eager", "ours"):
        if config == "stock":
            assert pipe.vae.config.force_upcast  # the SDXL base VAE as shipped
        elif config == "ours-eager":
            pipe.vae.register_to_config(force_upcast=False)  # as the fp16-fix VAE's config
            apply_eager_optimizations(pipe)
        else:
            compile_pipeline(pipe, args.compile_mode or COMPILE_MODE)
        if config not in configs:
            continue
        results[config] = []
        for batch in batches:
            row = measure(pipe, batch, args.iters)
            results[config].append(row)
            print(config, row, flush=True)

    report = {
        "device": torch.cuda.get_device_name(0),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join(["python", "benchmarks/image.py", *sys.argv[1:]]),
        "compile_mode": args.compile_mode or COMPILE_MODE,
        "results": results,
        "ratios_vs_stock": {
            c: {r["batch"]: round(s["ms_per_image"] / r["ms_per_image"], 2)
                for s, r in zip(results["stock"], rows)}
            for c, rows in results.items() if "stock" in results and c != "stock"
        },  # fmt: skip
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
