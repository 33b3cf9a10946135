"""Benchmark: image jobs on N Celery GPU workers against one, on the same batch.

The studio as deployed past one GPU: a real Redis, the engine with ``ENFOADS_QUEUE=celery``
(it runs no model), and ``enfoads worker --gpu i`` processes, one per GPU. Full-size SDXL
architecture with random weights (fp16, saved in the hub's layout and loaded by the studio's
own loader), 4 steps, one image per job, placements mixed (1024², 768×1344, 1344×768,
896×1152, 832×1216, 1216×832), eager (``ENFOADS_COMPILE=off``: no worker waits for a compile).

Each worker first takes warm-up jobs (it loads the model), then the batch is submitted at once:
jobs per minute over the batch's wall time, and each job's queueing delay (created → started).

    python benchmarks/workers.py --workers 1,2,1,2 --jobs 48 --json docs/benchmarks/workers.json

``--workers 1,2,1,2`` alternates the configurations; the ratio is over the repeats' means.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_record, write_json  # noqa: E402

PLACEMENTS = ["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]


def build_models(root: Path, size: str = "full") -> dict[str, Path]:
    """Full-size random SDXL in fp16: base (text encoders, configs), the 4-step UNet file, VAE."""
    import torch
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file
    from transformers import CLIPTokenizer

    from enfoads.testing.sdxl import build_components, write_clip_tokenizer

    done = root / "done"
    paths = {"base": root / "base", "unet": root / "lightning", "vae": root / "vae"}
    if done.exists():
        return paths
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    parts = build_components(size, 0, dtype=dtype, device=device)
    parts = {
        k: (v.to("cpu") if hasattr(v, "to") and k != "scheduler" else v) for k, v in parts.items()
    }
    write_clip_tokenizer(root / "tok")
    tokenizer = CLIPTokenizer.from_pretrained(root / "tok")
    pipe = StableDiffusionXLPipeline(tokenizer=tokenizer, tokenizer_2=tokenizer, **parts)
    pipe.save_pretrained(paths["base"], safe_serialization=True)
    paths["unet"].mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in parts["unet"].state_dict().items()}
    save_file(state, paths["unet"] / "sdxl_lightning_4step_unet.safetensors")
    parts["vae"].register_to_config(force_upcast=False)
    parts["vae"].save_pretrained(paths["vae"], safe_serialization=True)
    done.touch()
    return paths


def start_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    procs = []
    for gpu in range(n):
        log = logs / f"worker{gpu}-{n}.log"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "enfoads.cli", "worker", "--gpu", str(gpu)],
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
        )
    for gpu, proc in enumerate(procs):
        log = logs / f"worker{gpu}-{n}.log"
        deadline = time.monotonic() + 300
        while " ready." not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-3000:])
            time.sleep(0.2)
    return procs


def job_time_split(logs: Path, n_workers: int, job_ids: set[str]) -> dict:
    """Mean seconds generating and storing per job, from the workers' own log lines."""
    import re

    pattern = re.compile(r"job (job_\w+): \d+ images generated in ([\d.]+) s, stored in ([\d.]+) s")
    gen, store = [], []
    for gpu in range(n_workers):
        for match in pattern.finditer((logs / f"worker{gpu}-{n_workers}.log").read_text()):
            if match.group(1) in job_ids:
                gen.append(float(match.group(2)))
                store.append(float(match.group(3)))
    if not gen:
        return {}
    return {
        "generate_s_mean": round(statistics.mean(gen), 3),
        "store_s_mean": round(statistics.mean(store), 3),
    }


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_batch(studio, n_workers: int, jobs: int, env: dict[str, str], logs: Path) -> dict:
    procs = start_workers(n_workers, env, logs)
    try:
        # Every placement several times per worker: each shape's first run (cuDNN autotune,
        # allocator) is paid before the clock starts, whatever worker a job lands on.
        warm = [
            studio.generate_images(prompt="warm-up", placements=[p], seed=i)
            for i, p in enumerate(PLACEMENTS * 3 * n_workers)
        ]
        for job in warm:
            assert studio.wait_job(job.id, 900).state.value == "completed", studio.get_job(
                job.id
            ).error
        t0 = time.perf_counter()
        batch = [
            studio.generate_images(
                prompt=f"a product photo of a bottle, ad {i}",
                placements=[PLACEMENTS[i % len(PLACEMENTS)]],
                seed=i,
            )
            for i in range(jobs)
        ]
        done = [studio.wait_job(job.id, 1800) for job in batch]
        wall = time.perf_counter() - t0
    finally:
        stop(procs)
    assert all(j.state.value == "completed" for j in done), [j.error for j in done if j.error]
    delays = sorted((j.started_at - j.created_at).total_seconds() for j in done)
    runtimes = [(j.finished_at - j.started_at).total_seconds() for j in done]
    owners = {j.owner.split(":")[1] for j in done}
    split = job_time_split(logs, n_workers, {j.id for j in done})
    return {
        "workers": n_workers,
        "jobs": jobs,
        "wall_s": round(wall, 2),
        "jobs_per_minute": round(60 * jobs / wall, 2),
        "job_run_s_median": round(statistics.median(runtimes), 3),
        "job_run_s_mean": round(statistics.mean(runtimes), 3),
        "gap_s_per_job": round(wall * n_workers / jobs - statistics.mean(runtimes), 3),
        "queue_delay_s": {
            "mean": round(statistics.mean(delays), 2),
            "median": round(statistics.median(delays), 2),
            "max": round(delays[-1], 2),
        },
        "workers_used": len(owners),
        **split,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "sdxl-full")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--size",
        default="full",
        choices=["full", "tiny"],
        help="tiny: a quick check of the harness on CPU",
    )
    args = parser.parse_args()

    from enfoads.attach import make_studio
    from enfoads.core.settings import load_settings
    from enfoads.testing.redis import RedisServer

    models = build_models(args.models, args.size)
    work = Path(tempfile.mkdtemp(prefix="enfoads-workers-bench-"))
    results = []
    with RedisServer(work / "redis") as redis:
        env = dict(
            os.environ,
            ENFOADS_DATA_DIR=str(work / "data"),
            ENFOADS_QUEUE="celery",
            ENFOADS_REDIS_URL=redis.url,
            ENFOADS_COMPILE="off",
            HF_HUB_OFFLINE="1",
            ENFOADS_GPU_BUDGET_GB="40",
            ENFOADS_RAM_BUDGET_GB="60",
            ENFOADS_IMAGE_BASE_MODEL=str(models["base"]),
            ENFOADS_IMAGE_UNET_MODEL=str(models["unet"]),
            ENFOADS_IMAGE_VAE_MODEL=str(models["vae"]),
        )
        keys = {k[8:].lower(): v for k, v in env.items() if k.startswith("ENFOADS_")}
        studio = make_studio(
            load_settings(**keys, device="cpu")
        ).start()  # the engine runs no model
        try:
            for n in (int(x) for x in args.workers.split(",")):
                results.append(run_batch(studio, n, args.jobs, env, work))
                print(results[-1], flush=True)
        finally:
            studio.close()
    record = run_record(benchmark="workers", results=results)
    gpu_names = []
    try:
        import torch

        gpu_names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a CPU machine
        pass
    record["gpus"] = gpu_names
    rates: dict[int, list[float]] = {}
    for r in results:
        rates.setdefault(r["workers"], []).append(r["jobs_per_minute"])
    record["jobs_per_minute_mean"] = {n: round(statistics.mean(v), 2) for n, v in rates.items()}
    if len(rates) >= 2:  # the most workers against one, over the repeats (runs alternate)
        most, fewest = max(rates), min(rates)
        record["ratio"] = round(statistics.mean(rates[most]) / statistics.mean(rates[fewest]), 2)
        record["ratio_per_repeat"] = [round(b / a, 2) for a, b in zip(rates[fewest], rates[most])]
    write_json(args.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
