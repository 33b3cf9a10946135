"""The SDXL graph the image capability runs: eager speed-ups, the ``torch.compile`` policy
(what compiles, with which autotune, on how many CPUs), the diffusers-level generation (the
prompt encoded once, the denoising loop, the decode to bytes on the device) and the
whole-image CUDA graph (``ImageGraph``) a compiled shape replays. The capability itself
(request, loading, the job) is ``image.py``, which re-exports these names.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from enfoads.core import media
from enfoads.core.errors import EnfoadsError, JobCancelled, is_out_of_memory
from enfoads.core.pipelines import fastpath
from enfoads.core.pipelines.fastpath import CompiledPath
from enfoads.core.vram import release_torch_cache

log = logging.getLogger(__name__)


# The VAE decoder's convolutions are autotuned where the CPU can afford it: on an H100 with 16
# cores that is 3.5 min more per shape for a decode of 30 ms instead of 38 (121 → 113 ms an
# image, docs/benchmarks.md); a Colab VM's 2 cores would spend many minutes per placement.
AUTOTUNE_MIN_CPUS = 8


def compiles_fast() -> bool:
    """Whether this machine's CPUs can afford the longer compiles (``auto`` of the autotune
    and of the compile scope)."""
    return media.usable_cpus() >= AUTOTUNE_MIN_CPUS


def compile_scope(scope: str = "auto") -> str:
    """What compiles, for the ``compile_scope`` setting. Where the CPU compiles fast enough to
    autotune, the whole UNet: 112.8–115.8 ms an image at 1024² against 120.6–123.9 for the
    regional blocks on an H100 (batch 4: 99.9–102.3 against 111.4), for about twice the
    compile of a shape (docs/benchmarks.md). On fewer cores the shorter regional compile."""
    if scope == "auto":
        return "whole" if compiles_fast() else "regional"
    return scope


def vae_compile_mode(autotune: str = "auto") -> str | None:
    """The VAE decoder's ``torch.compile`` mode for the ``compile_autotune`` setting."""
    if autotune == "auto":
        autotune = "on" if compiles_fast() else "off"
    return "max-autotune-no-cudagraphs" if autotune == "on" else None


def apply_eager_optimizations(pipe: Any) -> None:
    """Fused QKV projections and channels-last convolutions (the VAE already decodes in fp16:
    the fp16-fix VAE's config says ``force_upcast: false``)."""
    import torch

    pipe.fuse_qkv_projections()
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)


# What a regional compile compiles in the UNet: the blocks it repeats (70 transformer blocks, 22
# ResNet blocks, the down- and up-samplers), each kind traced once per input shape and width;
# what is left eager (the stem, the time embedding, the norms around the transformers) is
# little work, and the whole image's CUDA graph removes its launches.
REGIONAL_BLOCKS = ("BasicTransformerBlock", "ResnetBlock2D", "Downsample2D", "Upsample2D")


def shared_copy(module: Any) -> Any:
    """A copy of ``module``'s tree of module objects over the same parameters and buffers (no
    tensor is copied): compiling its blocks in place leaves the original's eager."""
    import itertools

    tensors = itertools.chain(module.parameters(), module.buffers())
    return copy.deepcopy(module, {id(t): t for t in tensors})


def compile_pipeline(
    pipe: Any,
    backend: str = "inductor",
    dynamic: bool | None = False,
    vae_mode: str | None = None,
    scope: str = "whole",
    unet_mode: str | None = None,
    blocks: tuple[str, ...] = REGIONAL_BLOCKS,
) -> None:
    """``torch.compile`` the UNet and the VAE decoder (Inductor without CUDA graphs of its own:
    the studio captures each shape's whole image as one graph); ``vae_mode``: the decoder's
    mode (``vae_compile_mode``); ``scope``: ``whole`` compiles the UNet as one graph,
    ``regional`` only the blocks it repeats (``blocks``, by class name: one block's code serves
    all of its kind, so a shape traces a few blocks instead of the whole UNet); ``unet_mode``:
    the UNet's mode (None: Inductor's default).

    Nothing compiles here: each shape compiles on its first call, which the studio makes on a
    background thread (``fastpath.CompiledPath``), never in a job, and then captures as one
    CUDA graph (``ImageGraph``), which also removes the launches that the uncompiled parts of
    a regional UNet would cost. Inductor's and Triton's caches, and torch's portable cache
    artifacts, live in the data dir, on Drive in Colab.
    """
    import torch
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    inductor_config.conv_1x1_as_mm = True
    # Static shapes: one specialised graph per (placement, batch) instead of slower dynamic
    # kernels. Regional, a ResNet block's code serves 16 widths and resolutions a shape: 6
    # placements × a few batch sizes need a few hundred graphs of it.
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 512)
    dynamo_config.accumulated_recompile_limit = max(dynamo_config.accumulated_recompile_limit, 4096)
    options = dict(fullgraph=True, dynamic=dynamic, backend=backend)
    if scope == "regional":
        pipe.unet = shared_copy(pipe.unet)  # the eager pipeline's blocks stay eager
        for module in pipe.unet.modules():
            if type(module).__name__ in blocks:
                module.compile(mode=unet_mode, **options)
    else:
        pipe.unet = torch.compile(pipe.unet, mode=unet_mode, **options)
    pipe.vae.decode = torch.compile(pipe.vae.decode, mode=vae_mode, **options)


# -- generating ----------------------------------------------------------------------------
StepCallback = Callable[[int, int], None]


def encode(pipe: Any, prompt: str) -> dict[str, Any]:
    """The prompt through both text encoders, once: every placement and image of a job that
    uses this text reuses it (``generate(..., embeds=)``)."""
    import torch

    with torch.no_grad():
        embeds, _neg, pooled, _neg_pooled = pipe.encode_prompt(
            prompt,
            device=pipe._execution_device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )
    return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}


def generate(
    pipe: Any,
    prompt: str,
    width: int,
    height: int,
    seeds: list[int],
    steps: int,
    on_step: StepCallback | None = None,
    embeds: dict[str, Any] | None = None,
) -> list[Any]:
    """``len(seeds)`` images in one batched call; image i depends only on seeds[i].
    ``embeds``: the prompt already encoded (``encode``), instead of ``prompt``.
    ``pipe``: the eager pipeline, or a compiled shape's ``ImageGraph``."""
    import torch

    if isinstance(pipe, ImageGraph):
        return pipe.generate(seeds, embeds or encode(pipe.pipe, prompt), on_step)

    # CPU generators: the same seed gives the same image on any device.
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]

    def callback(_pipe: Any, step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            on_step(step + 1, steps)  # raises JobCancelled to stop between steps
        return kwargs

    text = embeds if embeds is not None else {"prompt": prompt}
    images = pipe(
        **text,
        width=width,
        height=height,
        num_inference_steps=steps,
        guidance_scale=0.0,
        num_images_per_prompt=len(seeds),
        generator=generators,
        callback_on_step_end=callback,
        output_type="pt",
    ).images
    return to_pil(images)


def to_bytes(images: Any) -> Any:
    """The decoded batch (floats in [0, 1], on the device) rounded to bytes on the device, as
    HWC arrays: a quarter of the data crosses to the host (diffusers' own "pil" output copies
    float32 pixels and converts them on the CPU). The same arithmetic as diffusers'."""
    import torch

    with torch.no_grad():
        pixels = (images.float() * 255).round().clamp(0, 255).to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).contiguous()


def to_pil(images: Any) -> list[Any]:
    """The decoded batch as PIL images (``to_bytes``, then one copy to the host)."""
    from PIL import Image

    return [Image.fromarray(a) for a in to_bytes(images).cpu().numpy()]


def initial_noise(pipe: Any, width: int, height: int, seeds: list[int], dtype: Any) -> Any:
    """The starting latents of ``pipe(...)`` with one CPU generator per image (diffusers'
    ``prepare_latents`` before its scaling by the scheduler's initial sigma)."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    shape = (
        len(seeds),
        pipe.unet.config.in_channels,
        height // pipe.vae_scale_factor,
        width // pipe.vae_scale_factor,
    )
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    return randn_tensor(shape, generator=generators, device=pipe.unet.device, dtype=dtype)


def time_ids(pipe: Any, width: int, height: int, batch: int, dtype: Any) -> Any:
    """SDXL's size conditioning for an uncropped ``width`` × ``height`` image, per image."""
    ids = pipe._get_add_time_ids(
        (height, width),
        (0, 0),
        (height, width),
        dtype=dtype,
        text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim,
    )
    return ids.to(pipe.unet.device).repeat(batch, 1)


def scheduler_for(pipe: Any, steps: int) -> Any:
    """A scheduler of ``pipe``'s kind with its timesteps on the device (the one copy from
    the host, made before any capture) and the first step chosen as the pipeline does."""
    scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps, device=pipe.unet.device)
    scheduler.set_begin_index(0)
    return scheduler


def denoise(
    pipe: Any,
    scheduler: Any,
    noise: Any,
    prompt_embeds: Any,
    pooled: Any,
    size_ids: Any,
) -> Any:
    """diffusers' SDXL text-to-image loop at guidance 0, then the decode and the rounding to
    bytes: ``pipe(..., guidance_scale=0)`` step for step, with no host synchronisation and no
    copy from the host, so a CUDA graph can capture it whole. ``scheduler``: a copy of one
    set for ``steps`` (``scheduler_for``; its step counter is its own). Returns the pictures
    as HWC bytes on the device."""
    import torch

    if pipe.vae.dtype == torch.float16 and pipe.vae.config.force_upcast:
        raise RuntimeError("this VAE decodes in fp32 only: no graph for it")
    latents = noise * scheduler.init_noise_sigma
    cond = {"text_embeds": pooled, "time_ids": size_ids}
    with torch.no_grad():
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(latents, t)
            noise_pred = pipe.unet(
                model_input,
                t,
                encoder_hidden_states=prompt_embeds,
                timestep_cond=None,
                cross_attention_kwargs=None,
                added_cond_kwargs=cond,
                return_dict=False,
            )[0]
            latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
        config = pipe.vae.config
        if getattr(config, "latents_mean", None) is not None:
            raise RuntimeError("this VAE denormalises its latents: no graph for it")
        image = pipe.vae.decode(latents / config.scaling_factor, return_dict=False)[0]
        return to_bytes((image / 2 + 0.5).clamp(0, 1))


def build_runner(
    twin: Any,
    shape: fastpath.Shape,
    steps: int,
    lock: Any,
    pool: Any,
    room: int | None = None,
) -> Any:
    """What jobs at ``shape`` run once it is compiled: its ``ImageGraph``; or the compiled twin
    without a graph (Inductor's kernels under diffusers' loop) where the graph would take the
    graphs' pool past ``room`` bytes (``fastpath.graph_room``: a T4 has room for none, an H100
    for every placement's) or its memory does not fit."""
    import torch

    if room is not None and not fastpath.graph_fits(pool, shape, room):
        log.info("no room for the graph of %dx%d batch %d: compiled, no graph", *shape)
        generate(twin, "warm-up", shape[0], shape[1], list(range(shape[2])), steps)
        return twin
    try:
        return ImageGraph(twin, *shape, steps, lock=lock, pool=pool)
    except torch.OutOfMemoryError:
        release_torch_cache()
        log.warning("no memory for the CUDA graph of %dx%d batch %d: compiled, no graph", *shape)
        return twin


def generate_or_fall_back(
    call: Any, target: Any, pipe: Any, fast: CompiledPath | None, shape: fastpath.Shape
) -> tuple[list[Any] | None, Any]:
    """``call(target)``, and what ran it. A compiled runner that fails (its memory did not fit
    a small GPU, say) leaves its shape eager from now on and the call runs eager. An eager
    call of several images that runs out of GPU memory gives ``None``: the job splits it."""
    try:
        return call(target), target
    except Exception as exc:
        if isinstance(exc, JobCancelled | EnfoadsError):
            raise
        if target is pipe:
            if is_out_of_memory(exc) and shape[2] > 1:
                log.warning("out of GPU memory at %dx%d batch %d: splitting it", *shape)
                release_torch_cache()
                return None, pipe
            raise
        if fast is not None:
            fast.demote(shape, fastpath.failure_reason(exc))
        release_torch_cache()
    return generate_or_fall_back(call, pipe, pipe, fast, shape)


class ImageGraph:
    """One shape's whole image as one CUDA graph: every UNet step, the scheduler's arithmetic,
    the VAE decode and the rounding to bytes (``denoise``). A call copies the noise and the
    prompt into the graph's inputs, replays it, and copies the bytes out: no Python runs per
    step, so the GPU never waits for the host. Same seeds, same pictures as ``generate``.

    ``pipe``: the compiled twin (its UNet and VAE decoder are ``torch.compile`` d); ``pool``:
    the memory pool every shape's graph shares (their replays never overlap: ``lock``);
    ``capture=False`` (a CPU) runs ``denoise`` on the same inputs instead of a graph.
    """

    def __init__(
        self,
        pipe: Any,
        width: int,
        height: int,
        batch: int,
        steps: int,
        *,
        lock: Any,
        pool: Any = None,
        capture: bool = True,
        warm_ups: int = 2,
    ):
        import torch

        self.pipe, self.width, self.height, self.batch, self.steps = (
            pipe,
            width,
            height,
            batch,
            steps,
        )
        self.lock = lock
        self.scheduler = scheduler_for(pipe, steps)
        embeds = encode(pipe, "")  # only the inputs' shapes and dtypes
        dtype = embeds["prompt_embeds"].dtype
        self.noise = initial_noise(pipe, width, height, [0] * batch, dtype)
        self.embeds = embeds["prompt_embeds"].repeat(batch, 1, 1)
        self.pooled = embeds["pooled_prompt_embeds"].repeat(batch, 1)
        self.size_ids = time_ids(pipe, width, height, batch, dtype)
        self.graph = None
        if not capture:
            return
        # Compile (the first call) and settle cuDNN and cuBLAS off the capture, on a side
        # stream as torch's CUDA-graph recipe asks. Not under the lock: the compile may pause
        # for jobs (``CompiledPath``), and these runs touch no other graph's memory.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warm_ups):
                self._run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with self.lock:
            # thread_local: a job running eager in another thread meanwhile is not captured
            with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
                self.pixels = self._run()
        self.graph = graph

    def _run(self) -> Any:
        return denoise(
            self.pipe,
            copy.copy(self.scheduler),  # a fresh step counter over the same timesteps
            self.noise,
            self.embeds,
            self.pooled,
            self.size_ids,
        )

    def generate(
        self,
        seeds: list[int],
        embeds: dict[str, Any],
        on_step: StepCallback | None = None,
    ) -> list[Any]:
        """``len(seeds)`` (the graph's batch) pictures for the encoded prompt ``embeds``."""
        from PIL import Image

        if len(seeds) != self.batch:
            raise ValueError(f"this graph makes {self.batch} images, not {len(seeds)}")
        with self.lock:
            self.noise.copy_(
                initial_noise(self.pipe, self.width, self.height, seeds, self.noise.dtype)
            )
            self.embeds.copy_(embeds["prompt_embeds"].expand_as(self.embeds))
            self.pooled.copy_(embeds["pooled_prompt_embeds"].expand_as(self.pooled))
            if self.graph is None:
                pixels = self._run()
            else:
                self.graph.replay()
                pixels = self.pixels
            array = pixels.cpu().numpy()  # copied out before another shape's replay
        if on_step is not None:
            on_step(self.steps, self.steps)  # one replay holds every step
        return [Image.fromarray(a) for a in array]
