"""Text-to-image with SDXL-Lightning: ad images in seconds, every placement in one job.

SDXL base 1.0 gives the text encoders, tokenizers and configs; ByteDance's Lightning UNet
(a single safetensors file) replaces its UNet; Euler with ``timestep_spacing="trailing"`` and
guidance 0 are what the Lightning weights were distilled for. The fp16-fix VAE decodes in fp16
on GPU (the stock SDXL VAE has to be upcast to fp32, see ``benchmarks/image.py``).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import Field, field_validator

from enfoads.core.assets import new_asset_id
from enfoads.core.capability import Capability, JobSpec, ModelSpec, Services
from enfoads.core.errors import (
    InvalidInput,
    ModelNotDownloaded,
    ModelUnavailable,
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
from enfoads.core.pipelines.sdxl_graph import (  # re-exported: the capability's graph
    AUTOTUNE_MIN_CPUS as AUTOTUNE_MIN_CPUS,
)
from enfoads.core.pipelines.sdxl_graph import (
    REGIONAL_BLOCKS as REGIONAL_BLOCKS,
)
from enfoads.core.pipelines.sdxl_graph import (
    ImageGraph as ImageGraph,
)
from enfoads.core.pipelines.sdxl_graph import (
    apply_eager_optimizations as apply_eager_optimizations,
)
from enfoads.core.pipelines.sdxl_graph import (
    build_runner as build_runner,
)
from enfoads.core.pipelines.sdxl_graph import (
    compile_pipeline as compile_pipeline,
)
from enfoads.core.pipelines.sdxl_graph import (
    compile_scope as compile_scope,
)
from enfoads.core.pipelines.sdxl_graph import (
    compiles_fast as compiles_fast,
)
from enfoads.core.pipelines.sdxl_graph import (
    denoise as denoise,
)
from enfoads.core.pipelines.sdxl_graph import (
    encode as encode,
)
from enfoads.core.pipelines.sdxl_graph import (
    generate as generate,
)
from enfoads.core.pipelines.sdxl_graph import (
    generate_or_fall_back as generate_or_fall_back,
)
from enfoads.core.pipelines.sdxl_graph import (
    initial_noise as initial_noise,
)
from enfoads.core.pipelines.sdxl_graph import (
    scheduler_for as scheduler_for,
)
from enfoads.core.pipelines.sdxl_graph import (
    shared_copy as shared_copy,
)
from enfoads.core.pipelines.sdxl_graph import (
    time_ids as time_ids,
)
from enfoads.core.pipelines.sdxl_graph import (
    to_bytes as to_bytes,
)
from enfoads.core.pipelines.sdxl_graph import (
    to_pil as to_pil,
)
from enfoads.core.pipelines.sdxl_graph import (
    vae_compile_mode as vae_compile_mode,
)
from enfoads.core.provenance import Claim
from enfoads.core.validation import RequestModel, check_text
from enfoads.core.vram import TorchAdapter

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


Style = Literal["none", "product", "lifestyle", "flat", "cinematic", "minimal"]
Placement = Literal["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]
assert get_args(Style) == tuple(STYLES) and get_args(Placement) == tuple(ASPECTS)  # one list


class GenerateImageRequest(RequestModel):
    """One image job: ``placements`` gives one image set per aspect, with the same seed.
    ``width`` and ``height`` (multiples of 8) replace the placements with one custom size."""

    prompt: str
    negative_prompt: str = ""
    seed: int | None = Field(None, ge=0, lt=2**63, description="none: a random one")
    num_images: int = Field(1, ge=1, description="at most the studio's batch limit")
    placements: list[Placement] = Field(default_factory=lambda: ["1:1"], min_length=1)
    style: Style = "none"
    width: int | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_SIDE,
        multiple_of=8,
        description="a custom size replaces the placements",
    )
    height: int | None = Field(None, ge=MIN_SIDE, le=MAX_SIDE, multiple_of=8)
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
        """The request with its seed chosen, or an InvalidInput naming the bad field: what
        the fields cannot say alone (their bounds and choices are the fields')."""
        prompt = self.prompt.strip()
        if not prompt:
            raise InvalidInput("error.empty", field="prompt")
        for name, text in (
            ("prompt", prompt),
            ("negative_prompt", self.negative_prompt),
            ("enhanced_prompt", self.enhanced_prompt or ""),
        ):
            check_text(text, name, limit=max_prompt_chars)
        if self.num_images > max_batch:
            raise InvalidInput(
                "error.out_of_range",
                field="num_images",
                value=self.num_images,
                low=1,
                high=max_batch,
            )
        if (self.width is None) != (self.height is None):  # a custom size needs both sides
            missing = "height" if self.height is None else "width"
            raise InvalidInput(
                "error.out_of_range", field=missing, value=None, low=MIN_SIDE, high=MAX_SIDE
            )
        seed = secrets.randbelow(2**31) if self.seed is None else self.seed
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


def estimate_bytes(settings: Settings, device: str) -> int:
    """What the pipeline will take, before loading it (the manager measures it afterwards)."""
    sources = (settings.image_base_model, settings.image_unet_model, settings.image_vae_model)
    if all(is_local(p) for p in sources):
        return local_weights_bytes(*sources)
    fp16 = sum(MODEL_TABLE[k].size_bytes for k in ("sdxl-base", "vae-fp16-fix"))
    fp16 += unet_file(settings).size_bytes
    return fp16 if device == "cuda" else 2 * fp16


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
        return [
            JobSpec(
                JOB_KIND,
                GenerateImageRequest,
                self.run,
                check=self.validate,
                route="/generate-image",
                queue="images",
                # generous for a T4 (downloads do not count): 3 placements × 4 images ≈ 1 min
                timeout_s=900.0,
                summary="Queue an image job and answer at once with its id (a Colab tunnel cuts "
                "long requests). Progress comes as Socket.IO ``job_update`` events and from "
                "``GET /api/jobs/{id}``.",
            )
        ]

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
        # the models' budget as the VRAM manager keeps it (the one GPU bookkeeper)
        return self.settings.compile == "on" or fastpath.compile_fits(
            self.services.models.gpu_budget
        )

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
            room = fastpath.graph_room(self.services.models.gpu_budget)

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
        ctx.progress(2, ctx.t("stage.loading_model"))
        notices: list[str] = []
        started = time.perf_counter()
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
            # Each image is stored (PNG, signature, thumbnail, fsync) while the next generate.
            with _Storer(self, request, texts, ctx) as storer:
                made = self._generate(pipe, request, sizes, texts, ctx, storer.put)
                generated = time.perf_counter()
                ctx.check_cancelled()  # a cancelled job keeps nothing it stored
                ctx.progress(96, ctx.t("stage.saving"))
                images_out = storer.results()
        if request.negative_prompt.strip():
            notices.append(ctx.t("notice.negative_prompt_ignored"))
        # Where a job's time goes, for the log (benchmarks/workers.py reads it).
        log.info(
            "job %s: %d images generated in %.3f s, stored in %.3f s",
            ctx.job_id,
            len(made),
            generated - started,
            time.perf_counter() - generated,  # the stores still running when the last is made
        )
        return JobResult(
            tuple(image["asset_id"] for image in images_out),
            {
                "seed": request.seed,
                "prompt_used": texts[sizes[0][0]],
                "prompts": texts,
                "notices": notices,
                "images": images_out,
                "request": request.model_dump(mode="json"),
            },
        )

    def _generate(
        self,
        pipe: Any,
        request: GenerateImageRequest,
        sizes: list[tuple[str, int, int]],
        texts: dict[str, str],
        ctx: JobContext,
        on_made: Callable[[tuple[str, int, int, int, Any]], None] = lambda made: None,
    ) -> list[tuple[str, int, int, int, Any]]:
        """Every placement's images (placement, width, height, seed, image): each text through
        the encoders once, batches split to the memory left, the compiled runner where a
        shape is ready (eager meanwhile), half the batch again after an out-of-memory.
        ``on_made`` gets each image as soon as it is decoded."""
        fast = self.fast_path(pipe)
        seeds = [request.seed + i for i in range(request.num_images)]
        run = _Batches(self, pipe, fast, ctx, total=len(sizes) * len(seeds), on_made=on_made)
        with fast.generating() if fast is not None else nullcontext():
            for placement, width, height in sizes:
                run.placement(placement, width, height, texts[placement], seeds)
        return run.made

    def _store(
        self,
        request: GenerateImageRequest,
        enhanced: str,
        made: tuple[str, int, int, int, Any],
        ctx: JobContext,
    ) -> dict[str, Any]:
        """One generated image as an asset, its record inside the PNG; what the job says."""
        placement, width, height, seed, image = made
        steps = self.settings.image_steps
        ids = self.model_ids()
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
                enhanced=enhanced,
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
                "enhanced_prompt": enhanced,
                "style": request.style,
                "steps": steps,
                "ai_generated": True,
            },
            claim=Claim(description=f"text to image ({placement})"),
        )
        return {
            "asset_id": asset.id,
            "placement": placement,
            "seed": seed,
            "width": width,
            "height": height,
            "url": asset.url,
        }

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
        enhancer, texts = self.enhancer, {}
        with enhancer.watching_download(ctx):  # the translator, through the need it declares
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


class _Storer:
    """A job's images stored as they come out, on a few threads, while the GPU makes the next
    ones: PNG encoding, the C2PA signature, hashing and the thumbnail release the GIL, so the
    store of one placement hides behind the next's generation. ``results()`` waits for every
    store (nothing is reported done before its file is durable); a job that fails or is
    cancelled keeps none of the assets it had stored."""

    def __init__(
        self,
        owner: ImagePipeline,
        request: GenerateImageRequest,
        texts: dict[str, str],
        ctx: JobContext,
    ):
        from concurrent.futures import ThreadPoolExecutor

        self.owner, self.request, self.texts, self.ctx = owner, request, texts, ctx
        # One core stays with the job's own thread (a Colab VM has two).
        workers = max(1, min(4, (os.cpu_count() or 2) - 1))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="enfoads-store")
        self.futures: list[Any] = []

    def put(self, made: tuple[str, int, int, int, Any]) -> None:
        text = self.texts[made[0]]
        self.futures.append(self.pool.submit(self.owner._store, self.request, text, made, self.ctx))

    def results(self) -> list[dict[str, Any]]:
        return [future.result() for future in self.futures]

    def __enter__(self) -> _Storer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.pool.shutdown(wait=True)
        if exc_type is None:
            return
        for future in self.futures:  # what was stored of a job that did not finish goes
            if future.exception() is None:
                with suppress(Exception):
                    self.owner.services.assets.delete(future.result()["asset_id"])


class _Batches:
    """One image job's generation, placement by placement (``ImagePipeline._generate``)."""

    def __init__(
        self,
        owner: ImagePipeline,
        pipe: Any,
        fast: Any,
        ctx: JobContext,
        total: int,
        on_made: Callable[[tuple[str, int, int, int, Any]], None],
    ):
        self.owner, self.pipe, self.fast, self.ctx = owner, pipe, fast, ctx
        self.on_made = on_made
        on_gpu = owner.services.models.device == "cuda"
        self.planner = owner.planner if on_gpu else None
        self.total = total  # images in the job
        self.done = 0
        self.made: list[tuple[str, int, int, int, Any]] = []
        self.encoded: dict[str, Any] = {}  # each text through the encoders once per job
        self.ceiling: dict[tuple[int, int], int] = {}  # sizes whose batch ran out of memory

    def placement(
        self, placement: str, width: int, height: int, text: str, seeds: list[int]
    ) -> None:
        if text not in self.encoded:
            self.encoded[text] = encode(self.pipe, text)
        left = list(seeds)
        while left:
            self.ctx.check_cancelled()
            count = self.planner.chunk(width, height, len(left)) if self.planner else len(left)
            count = min(count, self.ceiling.get((width, height), count))
            chunk, left = left[:count], left[count:]
            images = self._chunk(placement, width, height, text, chunk)
            if images is None:  # out of memory: again, half as many at a time
                self.ceiling[(width, height)] = len(chunk) // 2
                left = chunk + left
                continue
            self.done += len(chunk)
            for seed, image in zip(chunk, images):
                self.made.append((placement, width, height, seed, image))
                self.on_made(self.made[-1])

    def _chunk(
        self, placement: str, width: int, height: int, text: str, chunk: list[int]
    ) -> list[Any] | None:
        """One call's images, or None when it ran out of memory."""
        fast, pipe = self.fast, self.pipe
        shape = (width, height, len(chunk))
        target = fast.pipe_for(shape) if fast is not None else pipe
        # Honest: a shape not compiled yet runs eager while it compiles aside.
        key = (
            "stage.generating_eager" if fast is not None and target is pipe else "stage.generating"
        )
        start = self.done

        def on_step(step: int, of: int) -> None:
            share = (start + len(chunk) * step / of) / self.total
            self.ctx.progress(
                5 + 90 * share, self.ctx.t(key, placement=placement, step=step, steps=of)
            )

        # the same call on the compiled twin or, if that fails, eager
        call = partial(
            generate,
            prompt=text,
            width=width,
            height=height,
            seeds=chunk,
            steps=self.owner.settings.image_steps,
            on_step=on_step,
            embeds=self.encoded[text],
        )
        with fastpath.measured_peak(self.owner.services.models.device) as peak:
            images, target = generate_or_fall_back(call, target, pipe, fast, shape)
        if images is not None and self.planner is not None and peak and target is pipe:
            self.planner.record(width, height, len(chunk), peak[0])
        return images


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
