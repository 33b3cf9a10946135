"""Lip-sync's speed in the studio (issue #35): MuseTalk 1.5 over the photo warp's motion.

Full-size networks with random weights, built from the published configurations (MuseTalk 1.5's
UNet, sd-vae-ft-mse, whisper-tiny), fp16 on the GPU, through the studio's own
``LipSyncAnimator``. Times include the GPU's work:

- ``ms_per_frame``: by batch size, the mouth of one frame (crop, VAE encode, UNet, VAE decode,
  paste) over frames the classic animator made;
- ``ad_30s``: every frame of a 30 s 1080×1920 ad at 25 fps (the portrait at that size, the base
  animator's warp included), against the classic animator alone; ``realtime_factor`` is 30 s
  over the time taken; ``audio_s``: whisper's features for the 30 s;
- ``peak_gib``: the most GPU memory it took; ``t4_cap``: the same ad with the process held to
  a T4's 15 GiB (``torch.cuda.set_per_process_memory_fraction``), completed or not.

    python benchmarks/lipsync.py --out docs/benchmarks/lipsync-h100.json

``--smoke`` checks the script on a CPU: the tests' small networks through the studio's own
loader (``load_nets``), 2 s of speech.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common

SECONDS, FPS, RATE = 30, 25, 22050


class Models:
    """The model manager's call the animator makes, over the resident networks."""

    def __init__(self, nets, device: str):
        self.nets, self.device = nets, device

    @contextmanager
    def use(self, _name: str):
        yield self.nets


def full_nets():
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    from enfoads.core.pipelines.lipsync import UNET_CONFIG, MuseTalkNets

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    vae = AutoencoderKL(
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[128, 256, 512, 512],
        layers_per_block=2,
        sample_size=256,
    )
    whisper = WhisperModel(
        WhisperConfig(
            d_model=384,
            encoder_layers=4,
            decoder_layers=4,
            encoder_attention_heads=6,
            decoder_attention_heads=6,
            encoder_ffn_dim=1536,
            decoder_ffn_dim=1536,
        )
    ).encoder
    nets = MuseTalkNets(unet.eval(), vae.eval(), whisper.eval(), WhisperFeatureExtractor())
    return nets.to("cuda")


def small_nets(folder: Path):
    """The tests' small MuseTalk, saved in the published layout and read by the real loader."""
    from enfoads.core.pipelines.lipsync import load_nets
    from enfoads.core.settings import load_settings
    from enfoads.testing.musetalk import build_musetalk

    made = build_musetalk(folder / "musetalk")
    settings = load_settings(
        data_dir=folder / "data",
        lipsync_model=str(made["unet"]),
        lipsync_vae_model=str(made["vae"]),
        lipsync_audio_model=str(made["audio"]),
    )
    return load_nets(settings).to("cpu")


def speech() -> np.ndarray:
    """SECONDS of a voice-like signal: syllables of voiced tones, four a second, with pauses."""
    t = np.arange(SECONDS * RATE) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.6)
    return (
        0.3 * envelope * np.sin(2 * np.pi * 180 * t) * (1 + 0.3 * np.sin(2 * np.pi * 900 * t))
    ).astype(np.float32)


def portrait():
    import cv2

    from enfoads.core.pipelines.avatar import FaceGeometry
    from enfoads.testing.faces import astronaut_rgb

    rgb = cv2.resize(astronaut_rgb(), (1080, 1080), interpolation=cv2.INTER_CUBIC)
    canvas = np.pad(rgb, ((420, 420), (0, 0), (0, 0)), mode="edge")  # 1080×1920
    s, dy = 1080 / 512, 420
    face = FaceGeometry(
        (174 * s, 65 * s + dy, 273 * s, 164 * s + dy),
        (205 * s, 105 * s + dy),
        (243 * s, 105 * s + dy),
        (22 * s, 9 * s),
        (224 * s, 140 * s + dy),
        34 * s,
        "cascade",
    )
    return canvas, face


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def animate(models, samples, batch: int, frames: int | None = None) -> tuple[float, float]:
    """(seconds for the ad's frames, seconds of which whisper's features took)."""

    from enfoads.core.pipelines.avatar import TalkingPhotoAnimator, drive_from_audio
    from enfoads.core.pipelines.lipsync import LipSyncAnimator

    rgb, face = portrait()
    base = TalkingPhotoAnimator()
    base.prepare(rgb, face)
    animator = LipSyncAnimator(models, base, samples, RATE, batch=batch)
    animator.prepare(rgb, face)
    drive = drive_from_audio(samples, RATE, FPS)
    sync()
    t0 = time.perf_counter()
    with models.use("lipsync") as nets:
        from enfoads.core.pipelines.lipsync import audio_tokens

        animator.tokens = audio_tokens(nets, samples, RATE, FPS)
    sync()
    audio_s = time.perf_counter() - t0
    for i in range(frames or drive.frames):
        animator.frame(i, drive)
    sync()
    return time.perf_counter() - t0, audio_s


def mouth_ms(models, samples, batch: int) -> float:
    """ms per frame of the mouth alone (base frames made beforehand)."""
    from enfoads.core.pipelines.avatar import TalkingPhotoAnimator, drive_from_audio
    from enfoads.core.pipelines.lipsync import LipSyncAnimator

    rgb, face = portrait()
    base = TalkingPhotoAnimator()
    base.prepare(rgb, face)
    drive = drive_from_audio(samples, RATE, FPS)
    closed = replace(drive, mouth_open=np.zeros_like(drive.mouth_open))
    made = {i: base.frame(i, closed) for i in range(batch)}

    class Ready:
        name = "ready"

        def frame(self, i, _drive):
            return made[i]

    animator = LipSyncAnimator(models, Ready(), samples, RATE, batch=batch)
    animator.prepare(rgb, face)
    for _ in range(2):  # warm-up: cuDNN picks its kernels
        animator.render(drive, list(range(batch)))
    sync()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        animator.render(drive, list(range(batch)))
        sync()
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)) / batch, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="CPU, small networks, 2 s")
    args = ap.parse_args()
    import tempfile

    import torch

    global SECONDS

    from enfoads.core.pipelines.avatar import TalkingPhotoAnimator, drive_from_audio

    report = common.run_record(command=" ".join(["python", *sys.argv]))
    if args.smoke:
        SECONDS = 2
        tmp = tempfile.TemporaryDirectory()
        models = Models(small_nets(Path(tmp.name)), "cpu")
    else:
        report["gpu"] = torch.cuda.get_device_name()
        models = Models(full_nets(), "cuda")
    samples = speech()
    report["ms_per_frame"] = {b: mouth_ms(models, samples, b) for b in (1, 8, 16)}
    print(report["ms_per_frame"], flush=True)
    rgb, face = portrait()
    classic = TalkingPhotoAnimator()
    classic.prepare(rgb, face)
    drive = drive_from_audio(samples, RATE, FPS)
    t0 = time.perf_counter()
    for i in range(drive.frames):
        classic.frame(i, drive)
    classic_s = time.perf_counter() - t0
    if args.smoke:
        total, audio_s = animate(models, samples, batch=16)
        report["ad"] = {"seconds": round(total, 2), "audio_s": round(audio_s, 2)}
        print(report["ad"], flush=True)
        common.write_json(args.out, report)
        return
    torch.cuda.reset_peak_memory_stats()
    total, audio_s = animate(models, samples, batch=16)
    report["ad_30s"] = {
        "frames": drive.frames,
        "seconds": round(total, 2),
        "audio_s": round(audio_s, 2),
        "realtime_factor": round(SECONDS / total, 2),
        "classic_alone_s": round(classic_s, 2),
    }
    report["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(report["ad_30s"], report["peak_gib"], flush=True)
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(
        15 * 2**30 / torch.cuda.get_device_properties(0).total_memory
    )
    try:
        capped, _ = animate(models, samples, batch=8)
        report["t4_cap"] = {"completed": True, "seconds": round(capped, 2)}
    except torch.cuda.OutOfMemoryError as exc:
        report["t4_cap"] = {"completed": False, "error": str(exc).splitlines()[0][:200]}
    common.write_json(args.out, report)


if __name__ == "__main__":
    main()
