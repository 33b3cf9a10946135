"""Where a warm shape's compile time goes: regional compile from the portable cache, profiled.

``cold`` compiles the studio's twin (``image.compile_pipeline``, regional scope) at the shapes
given and saves torch's portable cache artifacts to FILE; ``warm``, in a new process with its
own empty Inductor and Triton caches, loads FILE first and makes the same images, printing the
time of each shape's first call, Dynamo's phase times (``torch._dynamo.utils.compile_times``)
and a cProfile of the first shape. Full-size SDXL with random fp16 weights on a GPU; the tiny
SDXL on a CPU.

    TORCHINDUCTOR_CACHE_DIR=/tmp/ic-cold TRITON_CACHE_DIR=/tmp/tc-cold \\
        python benchmarks/warm_profile.py cold /tmp/art.bin --shapes 1024x1024
    TORCHINDUCTOR_CACHE_DIR=/tmp/ic-warm TRITON_CACHE_DIR=/tmp/tc-warm \\
        python benchmarks/warm_profile.py warm /tmp/art.bin --shapes 1024x1024
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["cold", "warm"])
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("--shapes", default="1024x1024", help="comma-separated WxH")
    parser.add_argument("--scope", choices=["regional", "whole"], default="regional")
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionXLPipeline
    from torch._dynamo.utils import compile_times, counters
    from transformers import CLIPTokenizer

    from enfoads.core.pipelines import fastpath
    from enfoads.core.pipelines import image as image_mod
    from enfoads.testing.sdxl import build_components, write_clip_tokenizer

    cuda = torch.cuda.is_available()
    tok = Path("/tmp/enfoads-bench-tok")
    write_clip_tokenizer(tok)
    tokenizer = CLIPTokenizer.from_pretrained(tok)
    parts = build_components(
        "full" if cuda else "tiny",
        dtype=torch.float16 if cuda else None,
        device="cuda" if cuda else "cpu",
    )
    pipe = StableDiffusionXLPipeline(**parts, tokenizer=tokenizer, tokenizer_2=tokenizer)
    pipe.set_progress_bar_config(disable=True)
    if args.phase == "warm":  # before anything compiles, as the studio does
        t0 = time.perf_counter()
        fastpath.load_cache(args.artifacts)
        print(f"cache loaded in {time.perf_counter() - t0:.2f} s", flush=True)
    twin = fastpath.twin(pipe)
    image_mod.compile_pipeline(twin, scope=args.scope)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    profile = cProfile.Profile()
    times: dict[str, float] = {}
    for i, size in enumerate(args.shapes.split(",")):
        width, height = (int(v) for v in size.split("x"))
        t0 = time.perf_counter()
        if i == 0:
            profile.enable()
        image_mod.generate(twin, "a", width, height, [0], 4)
        sync()
        profile.disable()
        times[f"{size} first call s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        image_mod.generate(twin, "a", width, height, [0], 4)
        sync()
        times[f"{size} again s"] = round(time.perf_counter() - t0, 3)
    print(args.phase, times, flush=True)
    if args.phase == "cold":
        print("artifacts saved:", fastpath.save_cache(args.artifacts), "bytes")
    print({k: dict(v) for k, v in counters.items() if k in ("stats", "inductor", "aot_autograd")})
    print(compile_times(repr="str", aggregate=True))
    if args.phase == "warm":
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(30)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
