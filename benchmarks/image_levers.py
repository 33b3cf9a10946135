"""Where an image's time goes, and what each speed lever pays, at 1024², batch 1, 4 steps.

Full-size SDXL with random fp16 weights. Eager parts timed alone (text encoders, one UNet step,
the VAE decode, turning the decoded batch into pictures the old way and the studio's way),
cuDNN's autotuner on the VAE, then the compiled pipeline (``CompiledPath``, CUDA graphs)
per image with the prompt encoded in every call (stock's habit) and once per job (the
studio's), stock diffusers in the same run as the baseline.

    python benchmarks/image_levers.py --out docs/benchmarks/image-levers.json
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


def timed(fn, iters: int = 10) -> float:
    """Median ms of ``fn()`` (the GPU's work included) after two warm-ups."""
    import torch

    def call() -> None:
        fn()
        torch.cuda.synchronize()

    for _ in range(2):
        call()
    return round(1000 * common.timed(call, iters), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--vae-autotune",
        action="store_true",
        help="also time the VAE decode compiled with max-autotune (minutes)",
    )
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from enfoads.core.pipelines import fastpath
    from enfoads.core.pipelines.image import (
        apply_eager_optimizations,
        compile_pipeline,
        encode,
        generate,
        to_pil,
    )
    from enfoads.testing.sdxl import build_components, write_clip_tokenizer

    fastpath.ensure_cudagraph_tls()  # this thread runs compiled code too (as a job's worker)
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

    fast = fastpath.CompiledPath(
        pipe,
        compile_pipeline,
        warm_up=lambda twin, shape: generate(twin, "warm-up", shape[0], shape[1], [0], 4),
        pin=lambda: nullcontext(pipe),
    )
    fast.pipe_for((1024, 1024, 1))
    t0 = time.perf_counter()
    assert fast.wait_idle(900), "the compile did not finish"
    out["compile_s"] = round(time.perf_counter() - t0, 1)
    compiled = fast.fast
    out["compiled_ms"] = {
        "prompt_every_call": timed(lambda: generate(compiled, prompt, 1024, 1024, [1], 4)),
        "prompt_once_per_job": timed(
            lambda: generate(compiled, "", 1024, 1024, [1], 4, embeds=embeds)
        ),
    }
    out["ratio_vs_stock"] = {
        k: round(out["stock_ms"] / v, 2) for k, v in out["compiled_ms"].items()
    }
    print(json.dumps({"compile_s": out["compile_s"], **out["compiled_ms"]}), flush=True)
    scaled = latents / pipe.vae.config.scaling_factor
    with torch.no_grad():  # the same call the pipeline makes: the shape's compiled graph
        out["compiled_parts_ms"] = {
            "vae_decode": timed(lambda: compiled.vae.decode(scaled, return_dict=False))
        }
        if args.vae_autotune:
            import copy

            vae = copy.copy(pipe.vae)
            vae.decode = torch.compile(
                vae.decode, mode="max-autotune", fullgraph=True, dynamic=False
            )
            t0 = time.perf_counter()
            vae.decode(scaled, return_dict=False)
            out["compiled_parts_ms"]["vae_decode_max_autotune_compile_s"] = round(
                time.perf_counter() - t0, 1
            )
            out["compiled_parts_ms"]["vae_decode_max_autotune"] = timed(
                lambda: vae.decode(scaled, return_dict=False)
            )
            print(json.dumps(out["compiled_parts_ms"]), flush=True)
    fast.close()
    common.write_json(
        args.out,
        common.run_record(device=torch.cuda.get_device_name(0), torch=torch.__version__, **out),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
