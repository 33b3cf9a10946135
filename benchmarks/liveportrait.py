"""LivePortrait's speed in the studio: ms per frame at 512² and a 30 s ad's animation.

Full-size LivePortrait networks (the published configuration) with random weights, fp16 on the
GPU. Times, with the GPU's work included:

- ``prepare_ms``: the photo's appearance volume and keypoints (once per photo);
- ``ms_per_frame``: driving keypoints, warp and decode of one 512² face, by batch size, against
  the paper's 12.8 ms per frame on an RTX 4090;
- ``ad_30s``: every frame of a 30 s ad at 25 fps through the studio's animator (batches of 8,
  the face pasted back onto the photo), against the classic talking-photo animator on the same
  machine; ``realtime_factor`` is 30 s over the time taken.

    python benchmarks/liveportrait.py --out docs/benchmarks/liveportrait-h100.json
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common

PAPER_MS_PER_FRAME = 12.8  # LivePortrait paper, RTX 4090


class Models:
    """The model manager's two calls the animator makes, over one resident module."""

    def __init__(self, nets, device: str):
        self.nets, self.device = nets, device

    @contextmanager
    def use(self, _name: str):
        yield self.nets


def portrait() -> tuple[np.ndarray, object]:
    from enfoads.core.pipelines.avatar import FaceGeometry

    try:
        from enfoads.testing.faces import astronaut_rgb

        rgb = astronaut_rgb()
    except ImportError:  # no scikit-image here: a photo-sized stand-in
        rgb = np.random.default_rng(1).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    # The astronaut's face, as the studio's face finder gives it.
    face = FaceGeometry(
        (174.0, 65.0, 273.0, 164.0),
        (205.0, 105.0),
        (243.0, 105.0),
        (22.0, 9.0),
        (224.0, 140.0),
        34.0,
        "cascade",
    )
    return rgb, face


def drive(frames: int, fps: int = 25):
    from enfoads.core.pipelines.avatar import DriveSignal, blinks, head_motion

    t = np.arange(frames) / fps
    mouth = (0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t)).clip(0, 1) * (np.sin(t) > -0.6)
    return DriveSignal(fps, mouth.astype(np.float32), blinks(frames, fps), head_motion(frames, fps))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    import torch

    from enfoads.core.pipelines.liveportrait import LivePortraitAnimator
    from enfoads.core.pipelines.liveportrait_nets import DEFAULT_CONFIG, LivePortraitNets

    device = args.device
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    nets = LivePortraitNets(DEFAULT_CONFIG).eval().to(device)
    params = {
        name: round(sum(p.numel() for p in getattr(nets, name).parameters()) / 1e6, 2)
        for name in ("appearance", "motion", "warping", "decoder", "stitching", "lip", "eye")
    }
    models = Models(nets, device)
    rgb, face = portrait()
    out: dict = {"parameters_millions": params, "paper_ms_per_frame_rtx4090": PAPER_MS_PER_FRAME}

    animator = LivePortraitAnimator(models)

    def prepare() -> None:
        animator.prepare(rgb, face)
        sync()

    for _ in range(2):
        prepare()
    out["prepare_ms"] = round(1000 * common.timed(prepare, 5), 2)

    out["ms_per_frame"] = {}
    signal = drive(64)
    for batch in (1, 4, 8, 16):
        indices = list(range(batch))

        def step(indices=indices) -> None:
            animator.render(signal, indices)
            sync()

        for _ in range(3):
            step()
        out["ms_per_frame"][str(batch)] = round(1000 * common.timed(step, 10) / batch, 2)
        print(batch, out["ms_per_frame"][str(batch)], flush=True)
    best = min(out["ms_per_frame"].values())
    out["vs_paper"] = round(PAPER_MS_PER_FRAME / best, 2)
    if device == "cuda":
        out["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()

    frames = int(args.seconds * 25)
    signal = drive(frames)
    ad: dict = {"frames": frames, "seconds": args.seconds}
    neural = LivePortraitAnimator(models)
    t0 = time.perf_counter()
    neural.prepare(rgb, face)
    for i in range(frames):
        neural.frame(i, signal)
    sync()
    ad["liveportrait_s"] = round(time.perf_counter() - t0, 2)
    ad["liveportrait_realtime_factor"] = round(args.seconds / ad["liveportrait_s"], 2)
    try:
        from enfoads.core.pipelines.avatar import TalkingPhotoAnimator

        classic = TalkingPhotoAnimator()
        t0 = time.perf_counter()
        classic.prepare(rgb, face)
        for i in range(frames):
            classic.frame(i, signal)
        ad["classic_s"] = round(time.perf_counter() - t0, 2)
        ad["classic_realtime_factor"] = round(args.seconds / ad["classic_s"], 2)
    except ImportError as exc:  # OpenCV missing on this machine
        ad["classic_s"] = f"not measured here: {exc}"
    out["ad_30s"] = ad
    record = common.run_record(
        device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        torch=torch.__version__,
        **out,
    )
    print(record, flush=True)
    common.write_json(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
