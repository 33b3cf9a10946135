"""LivePortrait's networks (Guo et al. 2024, KwaiVGI/LivePortrait, MIT licence), written for
the studio from the paper and the published code, with the same modules, parameter names and
defaults, so the published weights load into them unchanged:

- ``AppearanceFeatureExtractor`` (F): the source crop → a 32×16×64×64 feature volume;
- ``MotionExtractor`` (M): a ConvNeXt-V2-tiny that predicts canonical keypoints, head pose
  bins, translation, expression and scale;
- ``WarpingNetwork`` (W) with its ``DenseMotionNetwork``: warps the feature volume from the
  source keypoints to the driving ones;
- ``SPADEDecoder`` (G): the warped features → a 512×512 face;
- ``StitchingRetargetingNetwork`` (S, R): the MLPs that stitch the face back onto the
  shoulders and retarget the lips and eyes.

Imports torch: import this module only where a model is built.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

# The published models' configuration (LivePortrait's src/config/models.yaml).
DEFAULT_CONFIG: dict[str, Any] = {
    "appearance_feature_extractor": {
        "image_channel": 3,
        "block_expansion": 64,
        "num_down_blocks": 2,
        "max_features": 512,
        "reshape_channel": 32,
        "reshape_depth": 16,
        "num_resblocks": 6,
    },
    "motion_extractor": {"num_kp": 21, "depths": [3, 3, 9, 3], "dims": [96, 192, 384, 768]},
    "warping_module": {
        "num_kp": 21,
        "block_expansion": 64,
        "max_features": 512,
        "num_down_blocks": 2,
        "reshape_channel": 32,
        "estimate_occlusion_map": True,
        "dense_motion_params": {
            "block_expansion": 32,
            "max_features": 1024,
            "num_blocks": 5,
            "reshape_depth": 16,
            "compress": 4,
        },
    },
    "spade_generator": {
        "upscale": 2,
        "block_expansion": 64,
        "max_features": 512,
        "num_down_blocks": 2,
    },
    "stitching_retargeting_module": {
        "stitching": {"input_size": 126, "hidden_sizes": [128, 128, 64], "output_size": 65},
        "lip": {"input_size": 65, "hidden_sizes": [128, 128, 64], "output_size": 63},
        "eye": {"input_size": 66, "hidden_sizes": [256, 256, 128, 128, 64], "output_size": 63},
    },
}


# -- blocks ------------------------------------------------------------------------------------
class SameBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size=3, padding=1, lrelu: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(cout, affine=True)
        self.ac = nn.LeakyReLU() if lrelu else nn.ReLU()

    def forward(self, x):
        return self.ac(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(cout, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class ResBlock3d(nn.Module):
    def __init__(self, features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv1 = nn.Conv3d(features, features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv3d(features, features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm3d(features, affine=True)
        self.norm2 = nn.BatchNorm3d(features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(out))) + x


class DownBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(cout, affine=True)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class UpBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(cout, affine=True)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=(1, 2, 2))
        return F.relu(self.norm(self.conv(out)))


class Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(
                in_features if i == 0 else min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
            )
            for i in range(num_blocks)
        )

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks = []
        for i in range(num_blocks)[::-1]:
            cin = (1 if i == num_blocks - 1 else 2) * min(
                max_features, block_expansion * (2 ** (i + 1))
            )
            blocks.append(UpBlock3d(cin, min(max_features, block_expansion * (2**i))))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, skips):
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


def coordinate_grid(d: int, h: int, w: int, ref: torch.Tensor) -> torch.Tensor:
    """(d, h, w, 3) coordinates in [-1, 1], x to the right, y down, z inwards."""

    def axis(n: int) -> torch.Tensor:
        return 2 * (torch.arange(n, device=ref.device, dtype=ref.dtype) / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(d), axis(h), axis(w), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def kp2gaussian(kp: torch.Tensor, spatial: tuple[int, int, int], variance: float) -> torch.Tensor:
    """(bs, k, d, h, w) gaussians around the keypoints (bs, k, 3)."""
    grid = coordinate_grid(*spatial, ref=kp)
    diff = grid.view(1, 1, *grid.shape) - kp.view(*kp.shape[:2], 1, 1, 1, 3)
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


# -- F -----------------------------------------------------------------------------------------
class AppearanceFeatureExtractor(nn.Module):
    def __init__(
        self,
        image_channel: int,
        block_expansion: int,
        num_down_blocks: int,
        max_features: int,
        reshape_channel: int,
        reshape_depth: int,
        num_resblocks: int,
    ):
        super().__init__()
        self.reshape_channel, self.reshape_depth = reshape_channel, reshape_depth
        self.first = SameBlock2d(image_channel, block_expansion)
        blocks, cout = [], block_expansion
        for i in range(num_down_blocks):
            cin = min(max_features, block_expansion * (2**i))
            cout = min(max_features, block_expansion * (2 ** (i + 1)))
            blocks.append(DownBlock2d(cin, cout))
        self.down_blocks = nn.ModuleList(blocks)
        self.second = nn.Conv2d(cout, max_features, kernel_size=1, stride=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))

    def forward(self, source):  # (bs, 3, 256, 256) in [0, 1]
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        bs, _c, h, w = out.shape
        return self.resblocks_3d(out.view(bs, self.reshape_channel, self.reshape_depth, h, w))


# -- M -----------------------------------------------------------------------------------------
class LayerNorm(nn.Module):
    """ConvNeXt's LayerNorm, over the last axis or (channels_first) over axis 1."""

    def __init__(self, dim: int, eps: float = 1e-6, data_format: str = "channels_last"):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps, self.data_format, self.shape = eps, data_format, (dim,)

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        out = self.dwconv(x).permute(0, 2, 3, 1)
        out = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(out)))))
        return x + out.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, depths, dims, num_kp: int = 21, num_bins: int = 66, in_chans: int = 3):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
                    LayerNorm(dims[0], data_format="channels_first"),
                )
            ]
            + [
                nn.Sequential(
                    LayerNorm(dims[i], data_format="channels_first"),
                    nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2),
                )
                for i in range(3)
            ]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock(dims[i]) for _ in range(depths[i])]) for i in range(4)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.fc_kp = nn.Linear(dims[-1], 3 * num_kp)
        self.fc_scale = nn.Linear(dims[-1], 1)
        self.fc_pitch = nn.Linear(dims[-1], num_bins)
        self.fc_yaw = nn.Linear(dims[-1], num_bins)
        self.fc_roll = nn.Linear(dims[-1], num_bins)
        self.fc_t = nn.Linear(dims[-1], 3)
        self.fc_exp = nn.Linear(dims[-1], 3 * num_kp)

    def forward(self, x) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        x = self.norm(x.mean([-2, -1]))
        return {
            "pitch": self.fc_pitch(x),
            "yaw": self.fc_yaw(x),
            "roll": self.fc_roll(x),
            "t": self.fc_t(x),
            "exp": self.fc_exp(x),
            "scale": self.fc_scale(x),
            "kp": self.fc_kp(x),
        }


class MotionExtractor(nn.Module):
    def __init__(self, num_kp: int = 21, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), **_: Any):
        super().__init__()
        self.detector = ConvNeXtV2(list(depths), list(dims), num_kp=num_kp)

    def forward(self, x):
        return self.detector(x)


# -- W -----------------------------------------------------------------------------------------
class DenseMotionNetwork(nn.Module):
    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        feature_channel: int,
        reshape_depth: int,
        compress: int,
        estimate_occlusion_map: bool = True,
    ):
        super().__init__()
        self.hourglass = Hourglass(
            block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features
        )
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.num_kp = num_kp
        self.occlusion = (
            nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3)
            if estimate_occlusion_map
            else None
        )

    def forward(self, feature, kp_driving, kp_source) -> dict[str, torch.Tensor]:
        feature = F.relu(self.norm(self.compress(feature)))
        bs, c, d, h, w = feature.shape
        k = self.num_kp
        identity = coordinate_grid(d, h, w, ref=kp_source).view(1, 1, d, h, w, 3)
        # Where each driving position comes from, under each keypoint's own translation.
        to_source = (
            identity - kp_driving.view(bs, k, 1, 1, 1, 3) + kp_source.view(bs, k, 1, 1, 1, 3)
        )
        sparse = torch.cat([identity.expand(bs, 1, d, h, w, 3), to_source], dim=1)
        repeated = (
            feature.unsqueeze(1).expand(bs, k + 1, c, d, h, w).reshape(bs * (k + 1), c, d, h, w)
        )
        deformed = F.grid_sample(
            repeated, sparse.reshape(bs * (k + 1), d, h, w, 3), align_corners=False
        )
        deformed = deformed.view(bs, k + 1, c, d, h, w)
        heat = kp2gaussian(kp_driving, (d, h, w), 0.01) - kp2gaussian(kp_source, (d, h, w), 0.01)
        heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1).unsqueeze(2)
        prediction = self.hourglass(torch.cat([heat, deformed], dim=2).view(bs, -1, d, h, w))
        mask = F.softmax(self.mask(prediction), dim=1).unsqueeze(2)  # (bs, k+1, 1, d, h, w)
        deformation = (sparse.permute(0, 1, 5, 2, 3, 4) * mask).sum(dim=1).permute(0, 2, 3, 4, 1)
        out = {"mask": mask.squeeze(2), "deformation": deformation}
        if self.occlusion is not None:
            _bs, _c, _d, ph, pw = prediction.shape
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction.reshape(bs, -1, ph, pw)))
        return out


class WarpingNetwork(nn.Module):
    def __init__(
        self,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        reshape_channel: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict[str, Any] | None = None,
        **_: Any,
    ):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp,
            feature_channel=reshape_channel,
            estimate_occlusion_map=estimate_occlusion_map,
            **(dense_motion_params or {}),
        )
        width = block_expansion * (2**num_down_blocks)
        self.third = SameBlock2d(max_features, width, lrelu=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1, stride=1)

    def forward(self, feature_3d, kp_driving, kp_source) -> torch.Tensor:
        motion = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        out = F.grid_sample(feature_3d, motion["deformation"], align_corners=False)
        bs, c, d, h, w = out.shape
        out = self.fourth(self.third(out.view(bs, c * d, h, w)))
        if "occlusion_map" in motion:
            out = out * motion["occlusion_map"]
        return out


# -- G -----------------------------------------------------------------------------------------
class SPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128):
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, 3, padding=1)

    def forward(self, x, segmap):
        actv = self.mlp_shared(F.interpolate(segmap, size=x.shape[2:], mode="nearest"))
        return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int = 128):
        super().__init__()
        self.learned_shortcut = fin != fout
        middle = min(fin, fout)
        self.conv_0 = spectral_norm(nn.Conv2d(fin, middle, 3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(middle, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = SPADE(fin, label_nc, hidden)
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(middle, label_nc, hidden)

    def forward(self, x, seg):
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEDecoder(nn.Module):
    def __init__(
        self,
        upscale: int = 1,
        max_features: int = 256,
        block_expansion: int = 64,
        out_channels: int = 64,
        num_down_blocks: int = 2,
        spade_hidden: int = 128,  # the published networks' (the tests' stand-ins use fewer)
    ):
        super().__init__()
        channels = min(max_features, block_expansion * (2**num_down_blocks))
        hidden = spade_hidden
        self.fc = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        for i in range(6):
            block = SPADEResnetBlock(2 * channels, 2 * channels, channels, hidden)
            setattr(self, f"G_middle_{i}", block)
        self.up_0 = SPADEResnetBlock(2 * channels, channels, channels, hidden)
        self.up_1 = SPADEResnetBlock(channels, out_channels, channels, hidden)
        self.up = nn.Upsample(scale_factor=2)
        self.conv_img = (
            nn.Conv2d(out_channels, 3, 3, padding=1)
            if not upscale or upscale <= 1
            else nn.Sequential(nn.Conv2d(out_channels, 3 * 4, 3, padding=1), nn.PixelShuffle(2))
        )

    def forward(self, feature):
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_1(self.up(self.up_0(self.up(x), feature)), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


# -- S, R --------------------------------------------------------------------------------------
class StitchingRetargetingNetwork(nn.Module):
    def __init__(self, input_size: int, hidden_sizes: list[int], output_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i, size in enumerate(hidden_sizes):
            layers += [nn.Linear(input_size if i == 0 else hidden_sizes[i - 1], size), nn.ReLU()]
        layers.append(nn.Linear(hidden_sizes[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)


# The published file's state dicts, by network (the safetensors flatten them with a prefix).
STITCHING_PREFIXES = {
    "stitching": "retarget_shoulder_module.",
    "lip": "retarget_mouth_module.",
    "eye": "retarget_eye_module.",
}


class LivePortraitNets(nn.Module):
    """The five networks as one module (the model manager moves and measures it)."""

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__()
        cfg = config or DEFAULT_CONFIG
        self.config = cfg
        self.appearance = AppearanceFeatureExtractor(**cfg["appearance_feature_extractor"])
        self.motion = MotionExtractor(**cfg["motion_extractor"])
        self.warping = WarpingNetwork(**cfg["warping_module"])
        self.decoder = SPADEDecoder(**cfg["spade_generator"])
        sr = cfg["stitching_retargeting_module"]
        self.stitching = StitchingRetargetingNetwork(**sr["stitching"])
        self.lip = StitchingRetargetingNetwork(**sr["lip"])
        self.eye = StitchingRetargetingNetwork(**sr["eye"])

    def parts(self) -> dict[str, list[tuple[str, nn.Module]]]:
        """Each published file and the networks it holds, with their key prefixes."""
        return {
            "appearance_feature_extractor": [("", self.appearance)],
            "motion_extractor": [("", self.motion)],
            "warping_module": [("", self.warping)],
            "spade_generator": [("", self.decoder)],
            "stitching_retargeting_module": [
                (STITCHING_PREFIXES[name], getattr(self, name))
                for name in ("stitching", "lip", "eye")
            ],
        }
