"""Text-to-image with SDXL-Lightning: ad images in seconds, every placement in one job.

SDXL base 1.0 gives the text encoders, tokenizers and configs; ByteDance's Lightning UNet
(a single safetensors file) replaces its UNet; Euler with ``timestep_spacing="trailing"`` and
guidance 0 are what the Lightning weights were distilled for. The fp16-fix VAE decodes in fp16
on GPU (the stock SDXL VAE has to be upcast to fp32, see ``benchmarks/image.py``).
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, field_validator

from enfoads.core import media
from enfoads.core.assets import new_asset_id
from enfoads.core.capability import Capability, JobSpec, ModelSpec, Services
from enfoads.core.errors import (
    EnfoadsError,
    InvalidInput,
    JobCancelled,
    ModelNotDownloaded,
    ModelUnavailable,
    is_out_of_memory,
)
from enfoads.core.jobs import JobContext, JobResult
from enfoads.core.pipelines import fastpath
from enfoads.core.pipelines.base import (
    ModelFile,
    ai_png_text,
    hub_cache,
    hub_error_reason,
    hub_kwargs,
    hub_reachable,
    in_cache,
    is_local,
    local_weights_bytes,
    quiet_model_libraries,
    resolve_file,
    use_model,
)
from enfoads.core.pipelines.fastpath import BatchPlanner, CompiledPath
from enfoads.core.pipelines.prompt import STYLES
from enfoads.core.validation import RequestModel, check_text
from enfoads.core.vram import TorchAdapter, release_torch_cache

if TYPE_CHECKING:
    from enfoads.core.pipelines.prompt import PromptEnhancer
    from enfoads.core.settings import Settings

log = logging.getLogger(__name__)

MODEL_NAME = "sdxl-lightning"
REVISION = "main"
JOB_KIND = "generate_image"

# Sizes are the fp16 downloads (approximate for the base: its two text encoders). Licences from
# the model cards. Revisions: the commit hashes could not be verified from here (no hub access),
# so the table says "main" rather than an unverified pin; ``REVISION`` below is the place
# to record them once read from a real download (huggingface_hub reports the commit).
MODEL_TABLE: dict[str, ModelFile] = {
    m.key: m
    for m in (
        ModelFile(
            "sdxl-base",
            "stabilityai/stable-diffusion-xl-base-1.0",
            None,
            REVISION,
            "CreativeML Open RAIL++-M",
            1_640_000_000,
            note="text encoders, tokenizers, configs (fp16 variant)",
        ),
        ModelFile(
            "lightning-2step",
            "ByteDance/SDXL-Lightning",
            "sdxl_lightning_2step_unet.safetensors",
            REVISION,
            "CreativeML Open RAIL++-M",
            5_135_149_760,
        ),
        ModelFile(
            "lightning-4step",
            "ByteDance/SDXL-Lightning",
            "sdxl_lightning_4step_unet.safetensors",
            REVISION,
            "CreativeML Open RAIL++-M",
            5_135_149_760,
            note="default",
        ),
        ModelFile(
            "lightning-8step",
            "ByteDance/SDXL-Lightning",
            "sdxl_lightning_8step_unet.safetensors",
            REVISION,
            "CreativeML Open RAIL++-M",
            5_135_149_760,
        ),
        ModelFile(
            "vae-fp16-fix", "madebyollin/sdxl-vae-fp16-fix", None, REVISION, "MIT", 334_643_268
        ),
    )
}

# SDXL's trained resolutions (about one megapixel each).
ASPECTS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "4:5": (896, 1152),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
}
MIN_SIDE, MAX_SIDE = 256, 2048


Style = Annotated[str, Field(json_schema_extra={"enum": list(STYLES)})]
Placement = Annotated[str, Field(json_schema_extra={"enum": list(ASPECTS)})]


class GenerateImageRequest(RequestModel):
    """One image job: ``placements`` gives one image set per aspect, with the same seed.
    ``width`` and ``height`` (multiples of 8) replace the placements with one custom size."""

    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    num_images: int = 1
    placements: list[Placement] = Field(default_factory=lambda: ["1:1"])
    style: Style = "none"
    width: int | None = Field(None, description="a custom size replaces the placements")
    height: int | None = None
    enhanced_prompt: str | None = Field(
        None, description="the user's own final text, sent as it is"
    )
    magic_prompt: bool = Field(
        False,
        description="compose the magic prompt for each placement in "
        "the job (Spanish translated, framed, within CLIP's 77 tokens)",
    )

    @field_validator("placements", mode="before")
    @classmethod
    def _one_placement(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def sizes(self) -> list[tuple[str, int, int]]:
        if self.width is not None or self.height is not None:
            return [(f"{self.width}x{self.height}", int(self.width or 0), int(self.height or 0))]
        return [(p, *ASPECTS[p]) for p in self.placements]

    def validated(self, max_prompt_chars: int, max_batch: int) -> GenerateImageRequest:
        """The request with its seed chosen, or an InvalidInput naming the bad field."""
        prompt = self.prompt.strip()
        if not prompt:
            raise InvalidInput("error.empty", field="prompt")
        for name, text in (
            ("prompt", prompt),
            ("negative_prompt", self.negative_prompt),
            ("enhanced_prompt", self.enhanced_prompt or ""),
        ):
            check_text(text, name, limit=max_prompt_chars)
        if self.style not in STYLES:
            raise InvalidInput(
                "error.unknown_choice", field="style", value=self.style, choices=", ".join(STYLES)
            )
        if not 1 <= self.num_images <= max_batch:
            raise InvalidInput(
                "error.out_of_range",
                field="num_images",
                value=self.num_images,
                low=1,
                high=max_batch,
            )
        if self.width is not None or self.height is not None:
            for name in ("width", "height"):
                value = getattr(self, name)
                if value is None or not MIN_SIDE <= value <= MAX_SIDE:
                    raise InvalidInput(
                        "error.out_of_range", field=name, value=value, low=MIN_SIDE, high=MAX_SIDE
                    )
                if value % 8:
                    raise InvalidInput("error.not_multiple", field=name, value=value, step=8)
        else:
            if not self.placements:
                raise InvalidInput("error.empty", field="placements")
            for p in self.placements:
                if p not in ASPECTS:
                    raise InvalidInput(
                        "error.unknown_choice",
                        field="placements",
                        value=p,
                        choices=", ".join(ASPECTS),
                    )
        seed = self.seed
        if seed is None:
            seed = secrets.randbelow(2**31)
        elif not 0 <= seed < 2**63:
            raise InvalidInput(
                "error.out_of_range", field="seed", value=seed, low=0, high=2**63 - 1
            )
        return self.model_copy(
            update={
                "prompt": prompt,
                "seed": seed,
                "placements": list(dict.fromkeys(self.placements)),
            }
        )


class MagicPromptRequest(RequestModel):
    """The magic prompt's options (a direct call: rules in milliseconds, the LLM when set)."""

    prompt: str
    style: Style = "none"
    placement: Placement | None = None
    brand_colors: list[str] = Field(default_factory=list)
    product: str | None = None
    use_llm: bool | None = None


# -- loading -------------------------------------------------------------------------------
def unet_file(settings: Settings) -> ModelFile:
    return MODEL_TABLE[f"lightning-{settings.image_steps}step"]


def load_pipeline(settings: Settings, device: str) -> Any:
    """The SDXL-Lightning pipeline on CPU, ready for ``device`` (fp16 there, fp32 on CPU).

    Reads the hub layout, or a local folder with the same layout: the tests build one.
    """
    quiet_model_libraries(diffusers=True)  # the job's progress is what the user sees
    try:
        return _load_pipeline(settings, device)
    except OSError as exc:  # diffusers reports a missing hub file as an OSError
        remote = [
            r for r in (settings.image_base_model, settings.image_vae_model) if not is_local(r)
        ]
        if not remote:
            raise
        raise ModelUnavailable(MODEL_NAME, hub_error_reason(exc)) from exc


def _load_pipeline(settings: Settings, device: str) -> Any:
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from safetensors.torch import load_file

    dtype = torch.float16 if device == "cuda" else torch.float32
    base, unet_entry = settings.image_base_model, unet_file(settings)
    base_kw = hub_kwargs(base, MODEL_TABLE["sdxl-base"].revision, settings.models_dir)
    # The Lightning file holds only weights: build the SDXL UNet from base's config on the
    # meta device (no random init of 2.6 B parameters) and assign the file's tensors.
    config = UNet2DConditionModel.load_config(base, subfolder="unet", **base_kw)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    weights = resolve_file(
        settings.image_unet_model,
        unet_entry.filename,
        unet_entry.revision,
        hub_cache(settings.models_dir),
    )
    unet.load_state_dict(load_file(str(weights)), strict=True, assign=True)
    unet.to(dtype)
    vae_repo = settings.image_vae_model
    vae = AutoencoderKL.from_pretrained(
        vae_repo,
        torch_dtype=dtype,
        use_safetensors=True,
        **hub_kwargs(vae_repo, MODEL_TABLE["vae-fp16-fix"].revision, settings.models_dir),
    )
    common = dict(unet=unet, vae=vae, torch_dtype=dtype, use_safetensors=True, **base_kw)
    try:
        pipe = StableDiffusionXLPipeline.from_pretrained(
            base, variant="fp16" if dtype == torch.float16 else None, **common
        )
    except (OSError, ValueError):
        if dtype != torch.float16:
            raise
        pipe = StableDiffusionXLPipeline.from_pretrained(base, **common)  # no fp16 variant
    pipe.scheduler = EulerDiscreteScheduler.from_config(
        pipe.scheduler.config, timestep_spacing="trailing"
    )
    pipe.set_progress_bar_config(disable=True)
    if device == "cuda":
        # Eager speed-ups only: the compile happens in the background (ImagePipeline.fast_path)
        apply_eager_optimizations(pipe)
    return pipe


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


def estimate_bytes(settings: Settings, device: str) -> int:
    """What the pipeline will take, before loading it (the manager measures it afterwards)."""
    sources = (settings.image_base_model, settings.image_unet_model, settings.image_vae_model)
    if all(is_local(p) for p in sources):
        return local_weights_bytes(*sources)
    fp16 = sum(MODEL_TABLE[k].size_bytes for k in ("sdxl-base", "vae-fp16-fix"))
    fp16 += unet_file(settings).size_bytes
    return fp16 if device == "cuda" else 2 * fp16


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


def ai_metadata(
    *,
    prompt: str,
    enhanced: str | None,
    seed: int,
    width: int,
    height: int,
    placement: str,
    model_ids: list[str],
    job_id: str,
    steps: int,
    asset_id: str | None = None,
    name: str | None = None,
) -> dict[str, str]:
    """PNG text chunks that label the file as AI-generated (and an IPTC/XMP source type), with
    the asset's own record (``asset_id``, ``name``: what a re-index of the vault reads)."""
    return ai_png_text(
        f"AI-generated image (SDXL-Lightning, {steps} steps). Prompt: {prompt}",
        {
            "model": f"SDXL-Lightning ({steps} steps)",
            "models": model_ids,
            "prompt": prompt,
            "enhanced_prompt": enhanced or prompt,
            "seed": seed,
            "width": width,
            "height": height,
            "placement": placement,
            "job_id": job_id,
            **({"asset_id": asset_id} if asset_id else {}),
            **({"name": name} if name else {}),
        },
    )


class ImagePipeline(Capability):
    """The image capability: validation, the model in the VRAM manager, the job handler."""

    name = "image"
    needs = ("prompt",)

    def __init__(self, services: Services):
        super().__init__(services)
        self.enhancer: PromptEnhancer = services.need("prompt")
        # How many images of a placement fit one call, from the memory each one was measured
        # to take on this GPU (a batch of 4 at 1024² does not fit a T4 in one call).
        self.planner = BatchPlanner(self._available_bytes)
        self._pool: Any = None  # the CUDA graphs' memory pool (kept across loads)
        self._cache_loaded = False
        self._fast_lock = threading.Lock()  # one compiled path per load (a job, a warm start)

    # -- the contract ----------------------------------------------------------------------
    def models(self) -> list[ModelSpec]:
        s, manager = self.settings, self.services.models
        unet = unet_file(s)
        # The device is resolved when the model is first used, not here (no torch at start-up).
        return [
            ModelSpec(
                MODEL_NAME,
                self.name,
                f"{s.image_base_model} + {s.image_unet_model}/{unet.filename}",
                unet.licence,
                unet.size_bytes + MODEL_TABLE["sdxl-base"].size_bytes,
                self.on_disk,
                load=lambda: load_pipeline(self.settings, manager.device),
                memory_bytes=lambda: estimate_bytes(self.settings, manager.device),
                adapter=ImageAdapter(),
            )
        ]

    def jobs(self) -> list[JobSpec]:
        return [JobSpec(JOB_KIND, GenerateImageRequest, self.run, check=self.validate)]

    def options(self) -> dict[str, Any]:
        return image_options(self.settings)

    def model_ids(self) -> list[str]:
        """Hub ids of the models used (a local folder shows as ``local:<name>``, no paths)."""
        s = self.settings
        label = lambda repo: f"local:{Path(repo).name}" if is_local(repo) else repo  # noqa: E731
        return [
            label(s.image_base_model),
            f"{label(s.image_unet_model)}/{unet_file(s).filename}",
            label(s.image_vae_model),
        ]

    def on_disk(self) -> bool:
        """The base (text encoders, configs), the Lightning UNet and the VAE are on disk."""
        s = self.settings
        models = s.models_dir
        return (
            in_cache(s.image_base_model, "model_index.json", models)
            and in_cache(s.image_unet_model, unet_file(s).filename, models)
            and in_cache(s.image_vae_model, "config.json", models)
        )

    def _available_bytes(self) -> int:
        """GPU memory an eager batch may take now (not the compiled graphs' own pool)."""
        pool = self._pool
        held = fastpath.pool_bytes(pool)[1] if pool is not None else 0
        return fastpath.cuda_available_bytes(held=held)

    def compiles(self) -> bool:
        """On a GPU with ``compile`` on; ``auto``: where the GPU has room for a compile beside
        a job (not a T4, whose jobs would run out of memory: ``fastpath.compile_fits``)."""
        if self.settings.compile == "off" or self.services.models.device != "cuda":
            return False
        budget = int(self.settings.gpu_budget_gb * 2**30)
        return self.settings.compile == "on" or fastpath.compile_fits(budget)

    def fast_path(self, pipe: Any) -> CompiledPath | None:
        """The loaded pipeline's compiled twin and its background compiler (GPU only, unless
        ``compile`` is off). Created on the first job after a load; closed with the model."""
        if not self.compiles():
            return None
        with self._fast_lock:
            return self._fast_path_locked(pipe)

    def _fast_path_locked(self, pipe: Any) -> CompiledPath:
        fast = getattr(pipe, "_enfoads_compiled", None)
        if fast is None:
            import torch

            cache = fastpath.cache_file(self.settings.compile_cache_dir)
            if not self._cache_loaded:  # before anything compiles in this process
                self._cache_loaded = fastpath.load_cache(cache)
            steps, lock = self.settings.image_steps, threading.Lock()
            if self._pool is None:  # one pool for every shape's graph
                self._pool = torch.cuda.graph_pool_handle()
            pool = self._pool
            room = fastpath.graph_room(int(self.settings.gpu_budget_gb * 2**30))

            def saved(shape: fastpath.Shape) -> None:
                fastpath.save_cache(cache)
                fastpath.save_shapes(cache, [shape])

            fast = CompiledPath(
                pipe,
                lock=lock,
                compile_fn=partial(
                    compile_pipeline,
                    vae_mode=vae_compile_mode(self.settings.compile_autotune),
                    scope=compile_scope(self.settings.compile_scope),
                ),
                build=lambda twin, shape: build_runner(twin, shape, steps, lock, pool, room),
                pin=lambda: self.services.models.use_if_resident(MODEL_NAME),
                on_compiled=saved,
                others_busy=self.services.jobs.busy,
            )
            for shape in fastpath.load_shapes(cache):  # a previous session's placements
                fast.want(shape)
            pipe._enfoads_compiled = fast
        return fast

    def warm_start(self) -> bool:
        """Earlier sessions' placements (``fastpath.load_shapes``) readied before the first job:
        the model loads now and its background compiler readies them from the compile cache
        while the queue is idle (a warm shape takes seconds, a cold one a minute). Only where
        the image model compiles and is already on disk: nothing downloads at start."""
        if self.settings.warm_start == "off" or not self.compiles() or not self.on_disk():
            return False
        shapes = fastpath.load_shapes(fastpath.cache_file(self.settings.compile_cache_dir))
        if not shapes:
            return False
        log.info("warm start: loading the image model to ready %d earlier placements", len(shapes))
        with self.services.models.use(MODEL_NAME) as pipe:
            self.fast_path(pipe)
        return True

    def validate(self, request: GenerateImageRequest) -> GenerateImageRequest:
        """The settings' limits and the seed: once, before the job is queued."""
        s = self.settings
        return request.validated(s.max_prompt_chars, s.image_max_batch)

    def run(self, ctx: JobContext, request: GenerateImageRequest) -> JobResult:
        if request.seed is None:  # a job queued without the facade (its checks ran before)
            request = request.model_copy(update={"seed": secrets.randbelow(2**31)})
        sizes = request.sizes()
        steps = self.settings.image_steps
        ctx.progress(2, ctx.t("stage.loading_model"))
        notices: list[str] = []
        seeds = [request.seed + i for i in range(request.num_images)]
        made: list[tuple[str, int, int, int, Any]] = []
        clock = time.perf_counter
        started = clock()
        download = unet_file(self.settings).size_bytes + sum(
            MODEL_TABLE[k].size_bytes for k in ("sdxl-base", "vae-fp16-fix")
        )
        if not self.on_disk() and not hub_reachable():
            # Said first: on a CPU the fp32 estimate would otherwise report "too large for the
            # RAM budget" for a model that simply is not there.
            raise ModelNotDownloaded("SDXL-Lightning")
        with use_model(self.services, ctx, MODEL_NAME, "SDXL-Lightning", download) as pipe:
            # After the load: SDXL's own tokenizer is on disk, so the prompts fit it exactly.
            texts = self.prompts(request, sizes, ctx, notices)
            fast = self.fast_path(pipe)
            on_gpu = self.services.models.device == "cuda"
            planner = self.planner if on_gpu else None
            encoded: dict[str, Any] = {}  # each text through the encoders once per job
            ceiling: dict[tuple[int, int], int] = {}  # sizes whose batch ran out of memory
            done = 0
            with fast.generating() if fast is not None else nullcontext():
                for placement, width, height in sizes:
                    text = texts[placement]
                    if text not in encoded:
                        encoded[text] = encode(pipe, text)
                    left = list(seeds)
                    while left:
                        ctx.check_cancelled()
                        count = planner.chunk(width, height, len(left)) if planner else len(left)
                        count = min(count, ceiling.get((width, height), count))
                        chunk, left = left[:count], left[count:]
                        shape = (width, height, len(chunk))
                        target = fast.pipe_for(shape) if fast is not None else pipe
                        # Honest: a shape not compiled yet runs eager while it compiles aside.
                        key = (
                            "stage.generating_eager"
                            if fast is not None and target is pipe
                            else "stage.generating"
                        )

                        def on_step(
                            step: int,
                            of: int,
                            start: int = done,
                            n: int = len(chunk),
                            placement: str = placement,
                            key: str = key,
                        ) -> None:
                            share = (start + n * step / of) / (len(sizes) * len(seeds))
                            ctx.progress(
                                5 + 90 * share, ctx.t(key, placement=placement, step=step, steps=of)
                            )

                        # the same call on the compiled twin or, if that fails, eager
                        call = partial(
                            generate,
                            prompt=text,
                            width=width,
                            height=height,
                            seeds=chunk,
                            steps=steps,
                            on_step=on_step,
                            embeds=encoded[text],
                        )

                        with fastpath.measured_peak(self.services.models.device) as peak:
                            images, target = generate_or_fall_back(call, target, pipe, fast, shape)
                        if images is None:  # out of memory: again, half as many at a time
                            ceiling[(width, height)] = len(chunk) // 2
                            left = chunk + left
                            continue
                        if planner is not None and peak and target is pipe:
                            planner.record(width, height, len(chunk), peak[0])
                        done += len(chunk)
                        made += [
                            (placement, width, height, seed, img)
                            for seed, img in zip(chunk, images)
                        ]
        ctx.check_cancelled()  # nothing is stored for a cancelled job
        generated = clock()
        ctx.progress(96, ctx.t("stage.saving"))
        if request.negative_prompt.strip():
            notices.append(ctx.t("notice.negative_prompt_ignored"))
        ids = self.model_ids()
        asset_ids, images_out = [], []
        for placement, width, height, seed, image in made:
            asset_id, name = new_asset_id("image"), f"{request.prompt[:60]} [{placement}]"
            asset = self.services.assets.add_image(
                image,
                "image",
                asset_id=asset_id,
                name=name,
                prompt=request.prompt,
                seed=seed,
                job_id=ctx.job_id,
                model_ids=ids,
                png_text=ai_metadata(
                    prompt=request.prompt,
                    enhanced=texts[placement],
                    seed=seed,
                    width=width,
                    height=height,
                    placement=placement,
                    model_ids=ids,
                    job_id=ctx.job_id,
                    steps=steps,
                    asset_id=asset_id,
                    name=name,
                ),
                meta={
                    "placement": placement,
                    "width": width,
                    "height": height,
                    "enhanced_prompt": texts[placement],
                    "style": request.style,
                    "steps": steps,
                    "ai_generated": True,
                },
            )
            asset_ids.append(asset.id)
            images_out.append(
                {
                    "asset_id": asset.id,
                    "placement": placement,
                    "seed": seed,
                    "width": width,
                    "height": height,
                    "url": asset.url,
                }
            )
        # Where a job's time goes, for the log (benchmarks/workers.py reads it).
        log.info(
            "job %s: %d images generated in %.3f s, stored in %.3f s",
            ctx.job_id,
            len(made),
            generated - started,
            clock() - generated,
        )
        return JobResult(
            tuple(asset_ids),
            {
                "seed": request.seed,
                "prompt_used": texts[sizes[0][0]],
                "prompts": texts,
                "notices": notices,
                "images": images_out,
                "request": request.model_dump(mode="json"),
            },
        )

    def prompts(
        self,
        request: GenerateImageRequest,
        sizes: list[tuple[str, int, int]],
        ctx: JobContext,
        notices: list[str],
    ) -> dict[str, str]:
        """The text sent to SDXL for each placement: the user's own final text as it is, the
        magic prompt composed for that placement, or the prompt with the style's words."""
        if request.enhanced_prompt:
            return {p: request.enhanced_prompt for p, _w, _h in sizes}
        from enfoads.core.pipelines.translate import MODEL

        enhancer, texts = self.enhancer, {}
        with ctx.watching_downloads(self.settings.models_dir, MODEL.repo, MODEL.size_bytes):
            if not request.magic_prompt:  # the prompt as written, in the English SDXL reads
                words = STYLES[request.style].words
                text = enhancer.translate(request.prompt, notices)
                text = f"{text}, {words}" if words else text
                return {p: text for p, _w, _h in sizes}
            ctx.stage(ctx.t("stage.magic_prompt"))
            for placement, _w, _h in sizes:
                result = enhancer.enhance(
                    request.prompt,
                    style=request.style,
                    placement=placement if placement in ASPECTS else None,
                    download=True,
                )
                texts[placement] = result.enhanced
                notices.extend(n for n in result.notices if n not in notices)
        return texts


class ImageAdapter(TorchAdapter):
    """The SDXL pipeline in the VRAM manager: its background compiler stops (and its compiled
    twins go) when the pipeline leaves the GPU or is dropped."""

    @staticmethod
    def _stop_compiling(pipe: Any) -> None:
        fast = getattr(pipe, "_enfoads_compiled", None)
        if fast is not None:
            fast.close()
            pipe._enfoads_compiled = None

    def to_device(self, model: Any, device: str) -> Any:
        if device != "cuda":
            self._stop_compiling(model)
        return super().to_device(model, device)

    def release(self, model: Any) -> None:
        self._stop_compiling(model)

    def stop(self, model: Any) -> None:  # ``vram.stop_background_work``: the studio closes
        self._stop_compiling(model)


def image_options(settings: Settings) -> dict[str, Any]:
    """Aspects, styles and limits, for the widgets and the API (no model needed)."""
    from enfoads.core.pipelines import prompt

    lang = settings.language
    return {
        "aspects": {k: {"width": w, "height": h} for k, (w, h) in ASPECTS.items()},
        "styles": {k: v.label(lang) for k, v in prompt.STYLES.items()},
        "max_batch": settings.image_max_batch,
        "max_prompt_chars": settings.max_prompt_chars,
        "steps": settings.image_steps,
        "models": [m.to_dict() for m in MODEL_TABLE.values()],
    }
