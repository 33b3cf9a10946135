"""What every benchmark records: when, where, with which command; and a median timer.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def run_record(**extra: Any) -> dict[str, Any]:
    """The date (UTC), the machine, the exact command, then ``extra``."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join(["python", *sys.argv]),
        **extra,
    }


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    """Print the results and, when a path is given, write them there."""
    text = json.dumps(results, indent=2) + "\n"
    print(text, end="")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """The median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def studio_pipe(parts: dict[str, Any], tokenizer_dir: Path) -> Any:
    """An SDXL pipeline over random-weight ``parts`` (``enfoads.testing.sdxl.build_components``)
    set up as the studio sets up the real one (``image._load_pipeline``): Euler with trailing
    timesteps, the fp16-fix VAE's config (no upcast), no progress bar. The eager speed-ups
    (``image.apply_eager_optimizations``) are the caller's."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from enfoads.testing.sdxl import write_clip_tokenizer

    write_clip_tokenizer(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    pipe = StableDiffusionXLPipeline(tokenizer=tokenizer, tokenizer_2=tokenizer, **parts)
    pipe.scheduler = EulerDiscreteScheduler.from_config(
        pipe.scheduler.config, timestep_spacing="trailing"
    )
    pipe.vae.register_to_config(force_upcast=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def built_sdxl_studio(settings: Any, cuda: bool, wrap: Callable[[Any], Any] | None = None) -> Any:
    """A ``Studio`` (not started) whose image model is SDXL built in the process: full size
    with random fp16 weights on a GPU, the tiny one on a CPU (``--smoke``), set up as the studio
    sets up the real one (``studio_pipe``, the eager speed-ups). ``wrap(pipe)`` sees each
    pipeline once built (a benchmark's timers). Call ``settings.apply_cache_env()`` first, as
    the studio does, before torch is imported."""
    import torch

    from enfoads.core.pipelines import image as image_mod
    from enfoads.core.studio import Studio
    from enfoads.testing.sdxl import build_components

    image_mod.ImagePipeline.on_disk = lambda self: True  # the weights are built, not read

    def loader():
        parts = build_components(
            "full" if cuda else "tiny",
            device="cuda" if cuda else "cpu",
            dtype=torch.float16 if cuda else None,
        )
        pipe = studio_pipe(parts, settings.data_dir / "tok")
        image_mod.apply_eager_optimizations(pipe)
        return wrap(pipe) if wrap is not None else pipe

    studio = Studio(settings)
    studio.models.register(
        image_mod.MODEL_NAME,
        loader,
        image_mod.estimate_bytes(settings, "cuda") if cuda else 10**8,
        adapter=image_mod.ImageAdapter(),
    )
    return studio
