"""A second session's way to compiled speed at all six placements, with the warm start.

Two processes on one data dir, as two Colab sessions on one Drive folder; both keep every
cache in the data dir, as the studio does (``--new-vm`` also deletes the machine's own default
caches before each, as a fresh VM has none). The first (cold) runs one job at the six placements
and waits until its background compile has readied them all (the compile cache and the list of
shapes are written into the data dir). The second (warm) starts an engine the way the notebook,
the dashboard and ``enfoads serve`` do (``Studio.start`` then ``Studio.warm_start``), sends the
same six-placement job ``--first-job-at`` seconds after the start, and records when each
placement's compiled graph is ready: seconds after the engine started and after the first job;
then a second job, which must run every placement compiled.

    python benchmarks/warm_session.py --out docs/benchmarks/warm-session-h100.json

Everything is the studio's own (``Studio``, ``ImagePipeline.run``, the warm start, the compile
cache) except the weights: full-size SDXL with random fp16 weights built in the process (the
loader stands in for reading 7 GB from Drive, which a real session pays before either path).
``--smoke`` checks the script on a CPU with the tiny SDXL (nothing compiles there).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import built_sdxl_studio, run_record, write_json

PLACEMENTS = ["1:1", "9:16", "16:9", "4:5", "2:3", "3:2"]
# Set here, they would point a session's compile caches outside its data dir.
CACHE_VARS = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")


def session(
    phase: str, data: Path, first_job_at: float, wait: float, smoke: bool, placements: list[str]
) -> dict:
    """One session on ``data``: its jobs, and when its placements were ready."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from enfoads.core.settings import load_settings

    cuda = not smoke
    settings = load_settings(
        data_dir=data,
        device="cuda" if cuda else "cpu",
        compile="on" if cuda else "off",
        compile_autotune="off",
        language="en",
    )
    settings.apply_cache_env()  # before torch, as the studio does: every cache in the data dir
    from enfoads.core.pipelines import image as image_mod

    studio = built_sdxl_studio(settings, cuda)
    sizes = [
        (w, h, 1)
        for _p, w, h in image_mod.GenerateImageRequest(prompt="x", placements=placements).sizes()
    ]
    started = time.perf_counter()
    since = lambda t0: round(time.perf_counter() - t0, 2)  # noqa: E731
    studio.start()
    warm_thread = studio.warm_start() if phase == "warm" else None
    out: dict = {
        "phase": phase,
        "first_job_at_s": first_job_at,
        "compile_scope": image_mod.compile_scope(settings.compile_scope),
        "jobs": [],
    }

    def fast():
        with studio.models.use_if_resident(image_mod.MODEL_NAME) as pipe:
            return getattr(pipe, "_enfoads_compiled", None)

    def job(name: str) -> None:
        t0 = time.perf_counter()
        done = studio.wait_job(
            studio.generate_images(prompt="olive oil bottle", seed=1, placements=placements).id,
            1800,
        )
        out["jobs"].append(
            {
                "job": name,
                "sent_at_s": round(t0 - started, 2),
                "state": done.state.value,
                "error": done.error or None,
                "images": len(done.result_asset_ids),
                "seconds": since(t0),
            }
        )
        print(json.dumps(out["jobs"][-1]), flush=True)

    time.sleep(max(0.0, first_job_at - (time.perf_counter() - started)))
    first_job = time.perf_counter()
    job("first")
    ready: dict[str, float] = {}
    deadline = time.perf_counter() + wait
    while cuda and time.perf_counter() < deadline and len(ready) < len(sizes):
        path = fast()
        for shape in sizes:
            key = "{}x{}".format(*shape[:2])
            if key not in ready and path is not None and path.ready(shape):
                ready[key] = time.perf_counter()
        time.sleep(0.05)
    out["ready_after_start_s"] = {k: round(t - started, 2) for k, t in ready.items()}
    out["ready_after_first_job_s"] = {k: round(t - first_job, 2) for k, t in ready.items()}
    out["all_ready_after_first_job_s"] = (
        round(max(ready.values()) - first_job, 2) if len(ready) == len(sizes) else None
    )
    out["all_ready_after_start_s"] = (
        round(max(ready.values()) - started, 2) if len(ready) == len(sizes) else None
    )
    path = fast()
    out["failed"] = {"{}x{}x{}".format(*s): r for s, r in (path.failed if path else {}).items()}
    if path is not None:  # what each placement runs now: its CUDA graph once ready
        out["runners"] = {"{}x{}".format(*s[:2]): type(path.runners.get(s)).__name__ for s in sizes}
    if cuda:  # a job at every placement once they are ready (storage included)
        job("again")
    if warm_thread is not None:
        warm_thread.join(5)
    studio.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--phase", choices=["cold", "warm"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--first-job-at", type=float, default=0.0, help="seconds after the warm engine starts"
    )
    parser.add_argument("--wait", type=float, default=480.0, help="most seconds to wait for")
    parser.add_argument("--smoke", action="store_true", help="check the script on a CPU")
    parser.add_argument(
        "--placements", default=",".join(PLACEMENTS), help="comma-separated (default: all six)"
    )
    parser.add_argument(
        "--new-vm",
        action="store_true",
        help="before each session, delete this machine's default compile caches "
        "(/tmp/torchinductor_USER, ~/.triton): a fresh Colab VM has none, only the data dir",
    )
    args = parser.parse_args()
    if args.phase is not None:  # one session, in its own process
        placements = args.placements.split(",")
        row = session(args.phase, args.data, args.first_job_at, args.wait, args.smoke, placements)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    data = Path(tempfile.mkdtemp(prefix="enfoads-warm-"))
    record = run_record()
    record["sessions"] = []
    for phase in ("cold", "warm"):
        if args.new_vm:
            user = getpass.getuser()
            for folder in (
                Path(tempfile.gettempdir()) / f"torchinductor_{user}",
                Path.home() / ".triton",
            ):
                shutil.rmtree(folder, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k not in CACHE_VARS}
        cmd = [sys.executable, __file__, "--phase", phase, "--data", str(data)]
        cmd += ["--first-job-at", str(args.first_job_at if phase == "warm" else 0)]
        cmd += ["--wait", str(args.wait), "--placements", args.placements]
        cmd += ["--smoke"] if args.smoke else []
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        sys.stderr.write(proc.stderr[-4000:])
        rows = [ln[7:] for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not rows:
            print(proc.stdout[-3000:])
            return 1
        record["sessions"].append(json.loads(rows[-1]))
        if phase == "warm":  # issue #34's key: a warm session's start → every placement ready
            record["warm_all_ready_s"] = record["sessions"][-1]["all_ready_after_start_s"]
        print(json.dumps(record["sessions"][-1], indent=1), flush=True)
        if args.out:
            write_json(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
