"""A studio process ends cleanly after its background compile (issue #30, item 8).

On an H100 a studio process segfaulted at interpreter exit after its background compile: the
compile ran on a daemon thread, and the interpreter finalized while that thread was inside
Inductor or a CUDA graph capture. Each scenario runs in its own process, as a notebook kernel
or ``enfoads serve`` would, and records the process's exit status:

- ``close_after``: one job, wait until its shape is compiled, ``Studio.close()``, exit;
- ``close_during``: one job, ``Studio.close()`` while its shape compiles, exit;
- ``exit_during``: one job, exit while its shape compiles without closing (a kernel shut down).

    python benchmarks/exit_clean.py --out docs/benchmarks/exit-clean-h100.json

Full-size SDXL with random fp16 weights built in the process, the studio's own ``Studio``,
``ImagePipeline`` and ``CompiledPath``. ``--smoke`` checks the script on a CPU with the tiny
SDXL (nothing compiles there, so every scenario is ``close_after``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import built_sdxl_studio, run_record, write_json

SCENARIOS = ("close_after", "close_during", "exit_during")


def child(scenario: str, data: Path, smoke: bool) -> None:
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
    settings.apply_cache_env()
    from enfoads.core.pipelines import image as image_mod

    studio = built_sdxl_studio(settings, cuda)
    studio.start()
    done = studio.wait_job(studio.generate_images(prompt="olive oil bottle", seed=1).id, 900)
    print(json.dumps({"job": done.state.value, "error": done.error or None}), flush=True)
    shape = (1024, 1024, 1)

    def fast():
        with studio.models.use_if_resident(image_mod.MODEL_NAME) as pipe:
            return getattr(pipe, "_enfoads_compiled", None)

    deadline = time.monotonic() + 600
    while cuda and time.monotonic() < deadline:
        path = fast()
        busy = path is not None and path.compiling == shape
        ready = path is not None and path.ready(shape)
        if (scenario == "close_after" and ready) or (scenario != "close_after" and busy):
            break
        time.sleep(0.05)
    print(json.dumps({"at": "compiled" if scenario == "close_after" else "compiling"}), flush=True)
    path = fast()
    if scenario != "exit_during":
        t0 = time.monotonic()
        studio.close()
        alive = path is not None and path._thread.is_alive()
        print(
            json.dumps({"close_s": round(time.monotonic() - t0, 2), "compile_thread_alive": alive}),
            flush=True,
        )
    t_exit = time.time()
    print(json.dumps({"exit_at": t_exit}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--child", choices=SCENARIOS)
    ap.add_argument("--data", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.smoke)
        return
    results = run_record(scenarios={})
    for scenario in SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--child", scenario, "--data", tmp]
            t0 = time.time()
            proc = subprocess.run(
                cmd + (["--smoke"] if args.smoke else []), capture_output=True, text=True
            )
            lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
            exit_at = next((x["exit_at"] for x in lines if "exit_at" in x), None)
            results["scenarios"][scenario] = {
                "returncode": proc.returncode,
                "segfault": proc.returncode == -11,
                "lines": [x for x in lines if "exit_at" not in x],
                "exit_s": round(time.time() - exit_at, 2) if exit_at else None,
                "total_s": round(time.time() - t0, 1),
                "stderr_tail": proc.stderr[-600:] if proc.returncode else "",
            }
            print(scenario, json.dumps(results["scenarios"][scenario]), flush=True)
    write_json(args.out, results)


if __name__ == "__main__":
    main()
