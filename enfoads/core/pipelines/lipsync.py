"""Lip-sync: the avatar's mouth speaks the words (MuseTalk 1.5), over another animator's motion.

MuseTalk (TMElyralab; code MIT, and its authors state the trained weights may be used for any
purpose, commercial included) inpaints the lower half of a 256² face crop in the latent space
of Stable Diffusion's VAE, conditioned on Whisper's audio features, in one UNet step:

1. the voice at 16 kHz through whisper-tiny's encoder; every hidden state (the embeddings and
   the four layers: 5 × 384) at 50 per second; each video frame gets the 10 around it (2
   frames' worth either side), 50 tokens of 384, plus a sinusoidal position code;
2. each frame of the base animator (the classic photo warp, or LivePortrait: head motion and
   blinks, the mouth kept closed) is cropped at the face box (a little below the chin, as
   MuseTalk 1.5 crops), resized to 256², its lower half masked; the masked crop and the
   photo's own crop are encoded by the VAE (4 + 4 latent channels, 32²);
3. the UNet (Stable Diffusion's, 8 input channels, cross-attention to the audio tokens) at
   timestep 0 gives the face's latent; the VAE decodes it, and its lower part is pasted back
   through a feathered mask: above the nose, the base animator's frame is untouched.

Weights: ``musetalkV15/unet.pth`` and its ``musetalk.json`` (``TMElyralab/MuseTalk``; a PyTorch
pickle, read with ``torch.load(weights_only=True)``: tensors only, on a torch without the known
bypasses (2.6 or newer), its SHA-256 checked), ``stabilityai/sd-vae-ft-mse`` (MIT) and
``openai/whisper-tiny`` (Apache-2.0) as safetensors. No InsightFace anywhere: the face box is
the studio's own (``avatar.locate_face``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from enfoads.core.capability import Capability, ModelSpec
from enfoads.core.errors import ModelNotDownloaded, ModelUnavailable
from enfoads.core.pipelines.base import hub_cache, in_cache, is_local, resolve_file

log = logging.getLogger(__name__)

MODEL_NAME = "lipsync"
LICENCE = "MIT (MuseTalk 1.5, TMElyralab: weights for any use, commercial included)"
UNET_FILES = ("musetalkV15/musetalk.json", "musetalkV15/unet.pth")
VAE_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
AUDIO_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
SIZE_BYTES = 3_400_000_000 + 335_000_000 + 151_000_000  # UNet fp32 + VAE + whisper-tiny
FACE_PX, AUDIO_RATE, AUDIO_FPS = 256, 16_000, 50
PAD_FRAMES = 2  # MuseTalk's audio window: 2 video frames either side
# Frames a UNet call makes: 12.6 ms a frame at 16 on an H100 against 15.6 at 8, 3.8 GiB at the
# peak (docs/benchmarks.md, lip-sync).
BATCH = 16
# The published configuration of musetalkV15/musetalk.json (diffusers' UNet2DConditionModel).
UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 384,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 8,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}


def positional_encoding(length: int, width: int) -> np.ndarray:
    """MuseTalk's sinusoidal code added to the audio tokens (sin on even, cos on odd)."""
    position = np.arange(length, dtype=np.float32)[:, None]
    rate = np.exp(np.arange(0, width, 2, dtype=np.float32) * (-math.log(10000.0) / width))
    code = np.zeros((length, width), dtype=np.float32)
    code[:, 0::2] = np.sin(position * rate)
    code[:, 1::2] = np.cos(position * rate)
    return code


def fetch(repo: str, filename: str, models_dir: Path) -> Path:
    """A file of a local folder or the hub (cached in the data dir). The one pickle, unet.pth,
    is fetched here; ``resolve_file`` takes the rest (safetensors and JSON only)."""
    if not filename.endswith(".pth"):
        return resolve_file(repo, filename, None, hub_cache(models_dir))
    if is_local(repo):
        path = Path(repo).expanduser() / filename
        if not path.is_file():
            raise ModelUnavailable("MuseTalk", f"{filename} not found")
        return path
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from enfoads.core.pipelines.base import hub_error_reason, hub_reachable

    cached = try_to_load_from_cache(repo, filename, cache_dir=hub_cache(models_dir))
    if isinstance(cached, str):
        return Path(cached)
    if not hub_reachable():
        raise ModelNotDownloaded("MuseTalk 1.5")
    try:
        return Path(hf_hub_download(repo, filename, cache_dir=hub_cache(models_dir)))
    except Exception as exc:  # hub errors come in many classes
        raise ModelUnavailable("MuseTalk", hub_error_reason(exc)) from exc


def checked_state(path: Path, expected_sha256: str) -> dict[str, Any]:
    """``unet.pth``'s tensors: its SHA-256 checked (``expected_sha256``, or the one recorded
    beside it at first use), read with ``weights_only=True`` (no code, only tensors) on a
    torch that has no known way around it."""
    import torch

    major, minor = (int(p) for p in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 6):
        raise ModelUnavailable("MuseTalk", "unet.pth needs torch 2.6 or newer to load safely")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(2**22), b""):
            digest.update(chunk)
    seen = digest.hexdigest()
    record = path.with_name(path.name + ".sha256")
    expected = expected_sha256.strip().lower()
    if not expected and record.is_file():
        expected = record.read_text(encoding="utf-8").strip()
    if expected and seen != expected:
        raise ModelUnavailable("MuseTalk", "unet.pth does not match its SHA-256 (a changed file)")
    if not expected:
        try:
            record.write_text(seen, encoding="utf-8")
        except OSError:  # a read-only cache: checked against the setting only
            pass
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not tensors only, or not a checkpoint
        raise ModelUnavailable("MuseTalk", f"unet.pth: {type(exc).__name__}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelUnavailable("MuseTalk", "unet.pth holds no state dict of tensors")
    return state


class MuseTalkNets:
    """The UNet, the VAE and whisper-tiny's encoder with its feature extractor, on CPU."""

    def __init__(self, unet: Any, vae: Any, whisper: Any, features: Any):
        self.unet, self.vae, self.whisper, self.features = unet, vae, whisper, features

    @property
    def components(self) -> dict[str, Any]:  # what the model manager weighs
        return {"unet": self.unet, "vae": self.vae, "whisper": self.whisper}

    def modules(self) -> list[Any]:
        return list(self.components.values())

    def to(self, device: str) -> MuseTalkNets:
        """fp16 on a GPU (MuseTalk's own ``--use_float16``), fp32 on the CPU."""
        import torch

        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        for module in self.modules():
            module.to(device=device, dtype=dtype)
        return self

    def parameters(self) -> Any:
        for module in self.modules():
            yield from module.parameters()


def load_nets(settings: Any) -> MuseTalkNets:
    """The three networks from their published files (the UNet's keys and shapes checked
    strictly against the configuration that builds it)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperFeatureExtractor, WhisperModel

    from enfoads.core.pipelines.base import quiet_model_libraries

    quiet_model_libraries(diffusers=True)
    models_dir = settings.models_dir
    try:
        config_path, unet_path = (fetch(settings.lipsync_model, f, models_dir) for f in UNET_FILES)
        vae_dir = [fetch(settings.lipsync_vae_model, f, models_dir) for f in VAE_FILES][0].parent
        audio_dir = [fetch(settings.lipsync_audio_model, f, models_dir) for f in AUDIO_FILES]
    except ModelNotDownloaded:
        raise ModelNotDownloaded("MuseTalk 1.5") from None
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    unet = UNet2DConditionModel(**config)
    try:
        unet.load_state_dict(checked_state(unet_path, settings.lipsync_unet_sha256), strict=True)
    except RuntimeError as exc:  # missing or unexpected keys, other shapes
        raise ModelUnavailable("MuseTalk", str(exc).splitlines()[0][:300]) from exc
    vae = AutoencoderKL.from_pretrained(str(vae_dir))
    whisper = WhisperModel.from_pretrained(str(audio_dir[0].parent)).encoder
    features = WhisperFeatureExtractor.from_pretrained(str(audio_dir[0].parent))
    return MuseTalkNets(unet.eval(), vae.eval(), whisper.eval(), features)


def audio_tokens(nets: MuseTalkNets, samples: np.ndarray, rate: int, fps: int) -> np.ndarray:
    """(frames, 10 × states, width) audio tokens, MuseTalk's window around each video frame."""
    import torch

    from enfoads.core.pipelines import compose

    voice = compose.resample(samples.astype(np.float32), rate, AUDIO_RATE)
    segment = 30 * AUDIO_RATE
    states = []
    device = next(nets.whisper.parameters()).device
    dtype = next(nets.whisper.parameters()).dtype
    for start in range(0, max(len(voice), 1), segment):
        mel = nets.features(
            voice[start : start + segment], sampling_rate=AUDIO_RATE, return_tensors="pt"
        ).input_features.to(device=device, dtype=dtype)
        with torch.inference_mode():
            hidden = nets.whisper(mel, output_hidden_states=True).hidden_states
        states.append(torch.stack(hidden, dim=2)[0].float().cpu().numpy())  # (1500, L+1, d)
    feats = np.concatenate(states)[: math.floor(len(voice) / AUDIO_RATE * AUDIO_FPS)]
    step = AUDIO_FPS / fps
    pad = math.ceil(step)
    window = 2 * (2 * PAD_FRAMES + 1)
    zeros = np.zeros((pad * 3 * PAD_FRAMES, *feats.shape[1:]), np.float32)
    feats = np.concatenate([zeros[: pad * PAD_FRAMES], feats, zeros])
    frames = math.floor(len(voice) / AUDIO_RATE * fps)
    out = np.stack([feats[int(i * step) : int(i * step) + window] for i in range(frames)])
    out = out.reshape(frames, -1, feats.shape[-1])
    return out + positional_encoding(out.shape[1], out.shape[2])


def mouth_box(face: Any, width: int, height: int) -> tuple[int, int, int, int]:
    """The crop MuseTalk 1.5 inpaints: the face box reaching a little below the chin."""
    x0, y0, x1, y1 = face.box
    y1 += 0.08 * (y1 - y0)
    box = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
    return tuple(int(round(v)) for v in box)  # type: ignore[return-value]


def lower_mask(w: int, h: int) -> np.ndarray:
    """(h, w, 1) weights of the pasted face: 0 above the middle, rising to 1 under the nose,
    fading at the sides and the bottom (the jaw line blends into the photo)."""
    rows = np.clip((np.arange(h) / h - 0.5) / 0.12, 0, 1)
    rows = np.minimum(rows, np.clip((1 - np.arange(h) / h) / 0.06, 0, 1))
    cols = np.clip(np.minimum(np.arange(w), np.arange(w)[::-1]) / (0.1 * w), 0, 1)
    mask = np.minimum.outer(rows, cols).astype(np.float32)
    return (mask * mask * (3 - 2 * mask))[..., None]


class LipSyncAnimator:
    """MuseTalk's mouth over ``base``'s frames (its head motion and blinks, the mouth closed);
    ``frame(i, drive)`` from any thread, made in batches and kept until the next batch."""

    name = "lipsync"

    def __init__(self, models: Any, base: Any, samples: np.ndarray, rate: int, batch: int = BATCH):
        self.models, self.base, self.batch = models, base, batch
        self.samples, self.rate = samples, rate
        self.tokens: np.ndarray | None = None  # the audio's, once per video
        self._lock = threading.Lock()
        self._frames: dict[int, np.ndarray] = {}

    def prepare(self, portrait: np.ndarray, face: Any) -> None:
        """The reference latent of the photo's face (``base`` comes prepared)."""
        import torch

        height, width = portrait.shape[:2]
        self.box = mouth_box(face, width, height)
        with self.models.use(MODEL_NAME) as nets, torch.inference_mode():
            self.reference = self._encode(nets, [self._crop(portrait)], masked=False)

    def _crop(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        x0, y0, x1, y1 = self.box
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1, :3])
        return cv2.resize(crop, (FACE_PX, FACE_PX), interpolation=cv2.INTER_AREA)

    def _encode(self, nets: MuseTalkNets, crops: list[np.ndarray], masked: bool) -> Any:
        import torch

        device, dtype = nets.vae.device, nets.vae.dtype
        x = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2).float() / 255
        if masked:
            x[:, :, FACE_PX // 2 :, :] = 0  # the lower half is what the UNet draws
        x = (x * 2 - 1).to(dtype)
        return nets.vae.encode(x).latent_dist.mode() * nets.vae.config.scaling_factor

    def render(self, drive: Any, indices: list[int]) -> list[np.ndarray]:
        import cv2
        import torch

        closed = replace(drive, mouth_open=np.zeros_like(drive.mouth_open))
        frames = [self.base.frame(i, closed) for i in indices]
        with self.models.use(MODEL_NAME) as nets, torch.inference_mode():
            if self.tokens is None:
                self.tokens = audio_tokens(nets, self.samples, self.rate, drive.fps)
            # frames past the voice (its tail, the end card) get its last window's silence
            at = np.clip(indices, 0, max(len(self.tokens) - 1, 0))
            audio = torch.from_numpy(np.ascontiguousarray(self.tokens[at]))
            unet = nets.unet
            masked = self._encode(nets, [self._crop(f) for f in frames], masked=True)
            latents = torch.cat([masked, self.reference.expand(len(frames), -1, -1, -1)], 1)
            out = unet(
                latents.to(unet.dtype),
                torch.zeros(len(frames), device=unet.device),
                encoder_hidden_states=audio.to(device=unet.device, dtype=unet.dtype),
            ).sample
            faces = nets.vae.decode(out.to(nets.vae.dtype) / nets.vae.config.scaling_factor)
            faces = ((faces.sample.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            faces = faces.permute(0, 2, 3, 1).cpu().numpy()
        x0, y0, x1, y1 = self.box
        mask = lower_mask(x1 - x0, y1 - y0)
        made = []
        for frame, face in zip(frames, faces):
            face = cv2.resize(face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            out_frame = frame.copy()
            under = out_frame[y0:y1, x0:x1].astype(np.float32)
            mixed = face.astype(np.float32) * mask + under * (1 - mask)
            out_frame[y0:y1, x0:x1] = mixed.round().clip(0, 255).astype(np.uint8)
            made.append(out_frame)
        return made

    def frame(self, index: int, drive: Any) -> np.ndarray:
        with self._lock:
            if index not in self._frames:
                start = index - index % self.batch
                indices = list(range(start, min(start + self.batch, drive.frames)))
                self._frames = dict(zip(indices, self.render(drive, indices)))
            return self._frames[index]


class LipSyncCapability(Capability):
    """MuseTalk 1.5's networks for the talking avatar (the avatar capability picks it)."""

    name = "lipsync"

    def models(self) -> list[ModelSpec]:
        return [
            ModelSpec(
                MODEL_NAME,
                self.name,
                "MuseTalk 1.5 (+ sd-vae-ft-mse, whisper-tiny)",
                LICENCE,
                SIZE_BYTES,
                self.on_disk,
                load=lambda: load_nets(self.settings),
                memory_bytes=SIZE_BYTES,
                optional=True,
            )
        ]

    def on_disk(self) -> bool:
        s, models_dir = self.settings, self.settings.models_dir
        files = [(s.lipsync_model, f) for f in UNET_FILES]
        files += [(s.lipsync_vae_model, f) for f in VAE_FILES]
        files += [(s.lipsync_audio_model, f) for f in AUDIO_FILES]
        return all(in_cache(repo, name, models_dir) for repo, name in files)

    def options(self) -> dict[str, Any]:
        return {"on_disk": self.on_disk(), "licence": LICENCE}

    def usable(self) -> bool:
        """Chosen by default: its files are here and a GPU renders it."""
        return self.on_disk() and self.services.models.device == "cuda"

    def model_ids(self) -> list[str]:
        s = self.settings
        label = lambda repo: f"local:{Path(repo).name}" if is_local(repo) else repo  # noqa: E731
        return [
            f"{label(s.lipsync_model)}/musetalkV15",
            label(s.lipsync_vae_model),
            label(s.lipsync_audio_model),
        ]

    def animator(self, base: Any, samples: np.ndarray, rate: int) -> LipSyncAnimator:
        if not self.on_disk():
            raise ModelNotDownloaded("MuseTalk 1.5")
        return LipSyncAnimator(self.services.models, base, samples, rate)
