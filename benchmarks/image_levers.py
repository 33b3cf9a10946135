"""Where an image's time goes, and what each speed lever pays, at 1024², batch 1, 4 steps.

Full-size SDXL with random fp16 weights. Eager parts timed alone (text encoders, one UNet step,
the VAE decode, turning the decoded batch into pictures the old way and the studio's way),
cuDNN's autotuner on the VAE, then the studio's compiled path per variant: the twin compiled
by Inductor and the whole image captured as one CUDA graph (``ImageGraph``, the prompt
encoded once per job), each variant compiled afresh; stock diffusers in the same run as the
baseline.

    python benchmarks/image_levers.py --variants base,vae-autotune --out docs/benchmarks/image-levers.json

Variants: ``base`` (plain Inductor: ``ENFOADS_COMPILE_AUTOTUNE=off``), ``vae-autotune`` (the VAE
decoder autotuned: the default on 8+ cores), ``cudnn-sdpa`` (cuDNN attention first), ``coordinate-descent``
(Inductor's coordinate-descent tuning of its own kernels) and ``dynamic`` (one dynamic-shape
compile for every placement); ``regional`` (only the blocks the UNet repeats compiled,
``image.REGIONAL_BLOCKS``: ``ENFOADS_COMPILE_SCOPE=regional``), ``regional-auto`` (the same
with torch's automatic dynamic shapes); a name may add ``-t2d`` (regional with whole
transformer models as regions, ``TRANSFORMER_REGIONS``), ``-vae-autotune`` and
``-unet-autotune`` (the UNet's kernels autotuned, ``max-autotune-no-cudagraphs``), and end
with ``-cd`` (coordinate-descent tuning), e.g. ``regional-t2d-vae-autotune``; ``b4:VARIANT`` times VARIANT at batch 4. (Earlier JSON: the
first regional run, ``image-levers-regional-transformers-h100.json``, compiled transformer
blocks only; ``regional-autotune`` there is ``regional-vae-autotune`` here.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common

# Whole transformer models (norm, projections and their blocks) as regions, instead of blocks.
TRANSFORMER_REGIONS = ("Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D")


def timed(fn, iters: int = 10) -> float:
    """Median ms of ``fn()`` (the GPU's work included) after two warm-ups."""
    import torch

    def call() -> None:
        fn()
        torch.cuda.synchronize()

    for _ in range(2):
        call()
    return round(1000 * common.timed(call, iters), 2)


def run_variant(variant: str, pipe, embeds: dict, prompt: str, stock_ms: float) -> dict:
    """Compile the studio's path afresh with one lever changed; its compile time and steady
    ms per image at 1024² batch 1."""
    import threading

    import torch
    import torch._inductor.config as inductor_config
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from enfoads.core.pipelines import fastpath
    from enfoads.core.pipelines.image import (
        REGIONAL_BLOCKS,
        ImageGraph,
        compile_pipeline,
        generate,
        vae_compile_mode,
    )

    torch._dynamo.reset()
    torch.cuda.empty_cache()
    inductor_config.coordinate_descent_tuning = variant == "coordinate-descent" or (
        variant.endswith("-cd")
    )
    batch = 4 if variant.startswith("b4:") else 1
    variant = variant.removeprefix("b4:")
    shape = (1024, 1024, batch)
    lock, pool = threading.Lock(), torch.cuda.graph_pool_handle()
    attention = (
        sdpa_kernel(
            [
                SDPBackend.CUDNN_ATTENTION,
                SDPBackend.FLASH_ATTENTION,
                SDPBackend.EFFICIENT_ATTENTION,
                SDPBackend.MATH,
            ],
            set_priority=True,
        )
        if variant == "cudnn-sdpa"
        else nullcontext()
    )

    def build(twin, s):
        with attention:
            return ImageGraph(twin, *s, 4, lock=lock, pool=pool)

    fast = fastpath.CompiledPath(
        pipe,
        lambda p: compile_pipeline(
            p,
            dynamic={"dynamic": True, "regional-auto": None}.get(variant, False),
            vae_mode=vae_compile_mode("on" if "vae-autotune" in variant else "off"),
            scope="regional" if variant.startswith("regional") else "whole",
            unet_mode="max-autotune-no-cudagraphs" if "unet-autotune" in variant else None,
            blocks=TRANSFORMER_REGIONS if "t2d" in variant else REGIONAL_BLOCKS,
        ),
        build,
        pin=lambda: nullcontext(pipe),
    )
    t0 = time.perf_counter()
    fast.pipe_for(shape)
    assert fast.wait_idle(900), "the compile did not finish"
    row = {
        "batch": batch,
        "compile_s": round(time.perf_counter() - t0, 1),
        "failed": fast.failed.get(shape),
    }
    if fast.ready(shape):
        runner = fast.pipe_for(shape)
        seeds = list(range(batch))
        ms = timed(lambda: generate(runner, "", 1024, 1024, seeds, 4, embeds=embeds), 10)
        row["ms_per_image"] = round(ms / batch, 2)
        row["ratio_vs_stock"] = round(stock_ms / row["ms_per_image"], 2)
        row["graph_pool_gb"] = round(fastpath.pool_bytes(pool)[0] / 1024**3, 2)
    fast.close()
    fast._thread.join(60)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--variants", default="base", help="comma-separated, see above")
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from enfoads.core.pipelines.image import (
        apply_eager_optimizations,
        encode,
        generate,
        to_pil,
    )
    from enfoads.testing.sdxl import build_components, write_clip_tokenizer

    parts = build_components("full", device="cuda", dtype=torch.float16)
    tok = Path("/tmp/enfoads-bench-tok")
    write_clip_tokenizer(tok)
    tokenizer = CLIPTokenizer.from_pretrained(tok)
    pipe = StableDiffusionXLPipeline(tokenizer=tokenizer, tokenizer_2=tokenizer, **parts)
    pipe.scheduler = pipe.scheduler.__class__.from_config(
        pipe.scheduler.config, timestep_spacing="trailing"
    )
    pipe.set_progress_bar_config(disable=True)
    prompt = "a red sneaker on a beach, product photo"
    out: dict = {}

    def stock_call() -> None:
        pipe(
            prompt=prompt,
            width=1024,
            height=1024,
            num_inference_steps=4,
            guidance_scale=0.0,
            generator=torch.Generator("cpu").manual_seed(1),
        )

    out["stock_ms"] = timed(stock_call, 5)
    pipe.vae.register_to_config(force_upcast=False)
    apply_eager_optimizations(pipe)
    embeds = encode(pipe, prompt)
    latents = torch.randn(1, 4, 128, 128, device="cuda", dtype=torch.float16)
    time_ids = torch.tensor([[1024, 1024, 0, 0, 1024, 1024]], device="cuda", dtype=torch.float16)
    cond = {"text_embeds": embeds["pooled_prompt_embeds"], "time_ids": time_ids}
    t = torch.tensor(999.0, device="cuda")
    with torch.no_grad():
        out["eager_parts_ms"] = {
            "text_encoders": timed(lambda: encode(pipe, prompt)),
            "unet_step": timed(
                lambda: pipe.unet(
                    latents,
                    t,
                    encoder_hidden_states=embeds["prompt_embeds"],
                    added_cond_kwargs=cond,
                    return_dict=False,
                )
            ),
            "vae_decode": timed(
                lambda: pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)
            ),
        }
        decoded = pipe.image_processor.postprocess(
            pipe.vae.decode(latents, return_dict=False)[0], output_type="pt"
        )
        out["eager_parts_ms"]["to_pictures_diffusers_pil"] = timed(
            lambda: pipe.image_processor.postprocess(decoded * 2 - 1, output_type="pil")
        )
        out["eager_parts_ms"]["to_pictures_studio"] = timed(lambda: to_pil(decoded))
        torch.backends.cudnn.benchmark = True
        out["eager_parts_ms"]["vae_decode_cudnn_benchmark"] = timed(
            lambda: pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)
        )
        torch.backends.cudnn.benchmark = False
    out["eager_generate_ms"] = timed(lambda: generate(pipe, prompt, 1024, 1024, [1], 4), 5)
    print(json.dumps(out, indent=1), flush=True)

    out["variants"] = {}
    for variant in args.variants.split(","):
        out["variants"][variant] = row = run_variant(variant, pipe, embeds, prompt, out["stock_ms"])
        print(variant, json.dumps(row), flush=True)
        common.write_json(  # after each variant: a run cut short keeps what it measured
            args.out,
            common.run_record(device=torch.cuda.get_device_name(0), torch=torch.__version__, **out),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
