"""Talking avatars with LivePortrait, driven by the voice (no driving video).

The photo's face is cropped (square, about 2.3 face widths, a little above the face's centre,
as LivePortrait crops), its appearance volume and keypoints are computed once, and each frame's
driving keypoints come from the source's own: the head pose plus a small head motion, the lips
opened by the lip-retargeting network as the voice's loudness says, the eyes closed by the
eye-retargeting network at each blink, then stitched so the shoulders stay put. Frames are
warped and decoded in batches (fp16 on a GPU) and pasted back onto the full photo through a
feathered mask: outside the crop the photo is untouched.

Weights: LivePortrait's published networks (KwaiVGI, MIT licence) as safetensors
(``Kijai/LivePortrait_safetensors``: the same tensors as the original ``.pth`` files, no
pickle), downloaded into the data dir on first use. The face box comes from the studio's own
face finder: InsightFace's landmarks when they are on disk (non-commercial), else
scikit-image's LBP cascade (BSD).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from enfoads.core.capability import Capability, ModelSpec
from enfoads.core.errors import ModelNotDownloaded, ModelUnavailable
from enfoads.core.pipelines.base import hub_cache, in_cache, is_local, resolve_file

log = logging.getLogger(__name__)

MODEL_NAME = "liveportrait"
REVISION = "main"
LICENCE = "MIT (LivePortrait, KwaiVGI)"
FILES = (
    "appearance_feature_extractor",
    "motion_extractor",
    "warping_module",
    "spade_generator",
    "stitching_retargeting_module",
)
SIZE_BYTES = 520_000_000  # the five fp32 files together (approximate)
INPUT_PX, OUTPUT_PX = 256, 512
CROP_SCALE, CROP_SHIFT = 2.3, -0.125  # LivePortrait's crop: 2.3 face sizes, 1/8 up
BATCH = 8
# The drive's head sway is in face widths (for the classic warp): about ±0.012 becomes a turn of
# ±3.6° and a nod of ±2.4°, a presenter's natural range; the tilt is in degrees already.
DEGREES_PER_FACE_WIDTH = 300.0


def config_of(repo: str) -> dict[str, Any] | None:
    """A folder's own ``config.json`` (the tests' small stand-ins), else None: the published
    networks' configuration."""
    path = Path(repo).expanduser() / "config.json"
    return (
        json.loads(path.read_text(encoding="utf-8")) if is_local(repo) and path.is_file() else None
    )


def load_nets(repo: str, models_dir: Path) -> Any:
    """The five networks on CPU, from safetensors only (no pickle), each file's keys checked."""
    from safetensors.torch import load_file

    from enfoads.core.pipelines.liveportrait_nets import LivePortraitNets

    nets = LivePortraitNets(config_of(repo))
    parts = nets.parts()
    for name in FILES:
        try:
            path = resolve_file(repo, f"{name}.safetensors", REVISION, hub_cache(models_dir))
        except ModelNotDownloaded:
            raise ModelNotDownloaded("LivePortrait") from None
        except ModelUnavailable as exc:  # the reason names the file, never a path
            reason = "not found" if "not found" in str(exc) else "cannot be downloaded"
            raise ModelUnavailable("LivePortrait", f"{name}.safetensors {reason}") from None
        try:
            state = load_file(str(path))
        except Exception as exc:  # a corrupt or truncated file
            raise ModelUnavailable(
                f"LivePortrait {name}", f"{type(exc).__name__}: {exc}"[:300]
            ) from exc
        for prefix, module in parts[name]:
            own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(own, strict=True)
            except RuntimeError as exc:
                raise ModelUnavailable(
                    f"LivePortrait {name}", str(exc).splitlines()[0][:300]
                ) from exc
    return nets.eval()


def save_nets(nets: Any, folder: Path) -> None:
    """Write ``nets`` in the published layout (one safetensors per file, with its config)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for name, parts in nets.parts().items():
        state = {}
        for prefix, module in parts:
            state.update({prefix + k: v.contiguous() for k, v in module.state_dict().items()})
        save_file(state, str(folder / f"{name}.safetensors"))
    (folder / "config.json").write_text(json.dumps(nets.config, indent=1), encoding="utf-8")


# -- keypoints ---------------------------------------------------------------------------------
def degrees(bins: Any) -> Any:
    """Head-pose bins (66 of 3°) → degrees, as LivePortrait reads them."""
    import torch

    idx = torch.arange(bins.shape[1], device=bins.device, dtype=torch.float32)
    return (torch.softmax(bins.float(), dim=1) * idx).sum(dim=1) * 3 - 97.5


def rotation(pitch: Any, yaw: Any, roll: Any) -> Any:
    """(bs, 3, 3) rotation matrices (transposed, as LivePortrait applies them) from degrees."""
    import torch

    x, y, z = (a * torch.pi / 180 for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rx = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], 1)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1)
    rz = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], 1)
    rot = rz.view(-1, 3, 3) @ ry.view(-1, 3, 3) @ rx.view(-1, 3, 3)
    return rot.transpose(1, 2)


def transform(kp: Any, rot: Any, exp: Any, scale: Any, t: Any) -> Any:
    """LivePortrait's Eqn. 2: s · (x_c R + δ) + t (t in x and y only)."""
    out = (kp @ rot + exp) * scale[..., None]
    out[..., :2] += t[:, None, :2]
    return out


def crop_box(face: Any) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop around the face; it may reach past the photo."""
    cx, cy = face.centre
    side = int(round(CROP_SCALE * max(face.width, face.height)))
    cy += CROP_SHIFT * side
    return int(round(cx - side / 2)), int(round(cy - side / 2)), max(side, 16)


def feather_mask(side: int) -> np.ndarray:
    """(side, side, 1) weights: 1 in the middle, fading to 0 at the crop's edges."""
    ramp = np.clip(np.minimum(np.arange(side), np.arange(side)[::-1]) / (0.12 * side), 0, 1)
    mask = np.minimum.outer(ramp, ramp).astype(np.float32)
    return (mask * mask * (3 - 2 * mask))[..., None]  # smoothstep


class LivePortraitAnimator:
    """A photo that speaks: ``prepare`` once per photo, then ``frame(i, drive)`` in any order
    from any thread (frames are made in batches and kept until the next batch)."""

    name = "liveportrait"

    def __init__(self, models: Any, batch: int = BATCH):
        self.models, self.batch = models, batch
        self._lock = threading.Lock()
        self._frames: dict[int, np.ndarray] = {}

    def prepare(self, portrait: np.ndarray, face: Any) -> None:
        import torch
        import torch.nn.functional as F

        self.base = np.ascontiguousarray(portrait[:, :, :3])
        height, width = self.base.shape[:2]
        x0, y0, side = crop_box(face)
        self.box = (x0, y0, side)
        # The crop, padded with the photo's edge where it reaches past it.
        pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
        padded = np.pad(self.base, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        crop = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
        self.mask = feather_mask(side)
        # Eye openness of the photo, for the eye-retargeting input (height over width).
        open_eye = float(np.clip(face.eye_size[1] / max(face.eye_size[0], 1.0), 0.15, 0.6))
        self.eye_open = open_eye
        with self.models.use(MODEL_NAME) as nets, torch.inference_mode(), self._autocast():
            device = next(nets.parameters()).device
            x = torch.from_numpy(np.ascontiguousarray(crop)).to(device).permute(2, 0, 1)[None]
            x = F.interpolate(
                x.float() / 255,
                size=(INPUT_PX, INPUT_PX),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            ).clamp(0, 1)
            self.feature = nets.appearance(x)
            info = nets.motion(x)
            kp = info["kp"].float().view(1, -1, 3)
            self.kp = kp
            self.exp = info["exp"].float().view(1, -1, 3)
            self.scale, self.t = info["scale"].float(), info["t"].float()
            self.pose = [degrees(info[k]) for k in ("pitch", "yaw", "roll")]
            self.x_s = transform(kp, rotation(*self.pose), self.exp, self.scale, self.t)

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.models.device == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def driving(self, nets: Any, drive: Any, indices: list[int]) -> Any:
        """The driving keypoints of ``indices``: the photo's pose moved by the head motion,
        the lips and eyes retargeted, then stitched."""
        import torch

        n, device = len(indices), self.x_s.device
        head = torch.as_tensor(drive.head[indices], dtype=torch.float32, device=device)
        mouth = torch.as_tensor(drive.mouth_open[indices], dtype=torch.float32, device=device)
        blink = torch.as_tensor(drive.blink[indices], dtype=torch.float32, device=device)
        pitch, yaw, roll = (p.expand(n) for p in self.pose)
        # head[:, 0:2]: shifts in face widths (a turn and a nod), head[:, 2]: tilt in degrees
        turn = DEGREES_PER_FACE_WIDTH
        rot = rotation(pitch + turn * head[:, 1], yaw + turn * head[:, 0], roll + head[:, 2])
        x_s = self.x_s.expand(n, -1, -1)
        x_d = transform(
            self.kp.expand(n, -1, -1),
            rot,
            self.exp.expand(n, -1, -1),
            self.scale.expand(n, -1),
            self.t.expand(n, -1),
        )
        flat = x_s.reshape(n, -1)
        lip = torch.stack([torch.zeros_like(mouth), 0.05 + 0.5 * mouth], dim=1)
        eyes = torch.full((n, 2), self.eye_open, device=device)
        eye = torch.cat([eyes, (self.eye_open * (1 - blink))[:, None]], dim=1)
        x_d = x_d + nets.lip(torch.cat([flat, lip], 1)).view(n, -1, 3)
        x_d = x_d + nets.eye(torch.cat([flat, eye], 1)).view(n, -1, 3)
        delta = nets.stitching(torch.cat([flat, x_d.reshape(n, -1)], 1))
        k = x_s.shape[1]
        x_d = x_d + delta[:, : 3 * k].view(n, k, 3)
        x_d[..., :2] = x_d[..., :2] + delta[:, 3 * k : 3 * k + 2].view(n, 1, 2)
        return x_d

    def render(self, drive: Any, indices: list[int]) -> list[np.ndarray]:
        """Faces for ``indices``, uint8 RGB, already at the crop's size (resized on the
        device: less to copy back when the face is smaller than 512²)."""
        import torch
        import torch.nn.functional as F

        with self.models.use(MODEL_NAME) as nets, torch.inference_mode(), self._autocast():
            x_d = self.driving(nets, drive, indices)
            n = len(indices)
            feature = self.feature.expand(n, -1, -1, -1, -1)
            warped = nets.warping(feature, x_d, self.x_s.expand(n, -1, -1))
            faces = nets.decoder(warped).float()
            side = self.box[2]
            if side != OUTPUT_PX:
                faces = F.interpolate(
                    faces,
                    size=(side, side),
                    mode="bilinear",
                    antialias=side < OUTPUT_PX,
                    align_corners=False,
                )
            faces = (faces.clamp(0, 1) * 255).round().to(torch.uint8)
            out = faces.permute(0, 2, 3, 1).cpu().numpy()
        return list(out)

    def paste(self, face: np.ndarray) -> np.ndarray:
        x0, y0, side = self.box
        height, width = self.base.shape[:2]
        out = self.base.copy()
        ax0, ay0 = max(0, x0), max(0, y0)
        ax1, ay1 = min(width, x0 + side), min(height, y0 + side)
        if ax1 <= ax0 or ay1 <= ay0:
            return out
        sx0, sy0 = ax0 - x0, ay0 - y0
        region = face[sy0 : sy0 + ay1 - ay0, sx0 : sx0 + ax1 - ax0].astype(np.float32)
        alpha = self.mask[sy0 : sy0 + ay1 - ay0, sx0 : sx0 + ax1 - ax0]
        under = out[ay0:ay1, ax0:ax1].astype(np.float32)
        out[ay0:ay1, ax0:ax1] = (
            (region * alpha + under * (1 - alpha)).round().clip(0, 255).astype(np.uint8)
        )
        return out

    def frame(self, index: int, drive: Any) -> np.ndarray:
        with self._lock:
            if index not in self._frames:
                start = index - index % self.batch
                indices = list(range(start, min(start + self.batch, drive.frames)))
                self._frames = dict(zip(indices, self.render(drive, indices)))
            face = self._frames[index]
        return self.paste(face)


class LivePortraitCapability(Capability):
    """LivePortrait's networks for the talking avatar (the avatar capability picks it)."""

    name = "liveportrait"

    def models(self) -> list[ModelSpec]:
        repo, models_dir = self.settings.liveportrait_model, self.settings.models_dir
        return [
            ModelSpec(
                MODEL_NAME,
                self.name,
                f"LivePortrait ({repo if not is_local(repo) else 'local:' + Path(repo).name})",
                LICENCE,
                SIZE_BYTES,
                self.on_disk,
                load=lambda: load_nets(repo, models_dir),
                memory_bytes=SIZE_BYTES,
                optional=True,
            )
        ]

    def on_disk(self) -> bool:
        repo, models_dir = self.settings.liveportrait_model, self.settings.models_dir
        return all(in_cache(repo, f"{name}.safetensors", models_dir) for name in FILES)

    def options(self) -> dict[str, Any]:
        return {"on_disk": self.on_disk(), "licence": LICENCE}

    def usable(self) -> bool:
        """Chosen by default: its files are here and a GPU renders faster than real time."""
        return self.on_disk() and self.services.models.device == "cuda"

    def animator(self) -> LivePortraitAnimator:
        return LivePortraitAnimator(self.services.models)
