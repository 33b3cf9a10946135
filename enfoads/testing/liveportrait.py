"""LivePortrait stand-ins: the real networks (``liveportrait_nets``) with random weights, saved
as the published safetensors files, so the studio's own loader reads them.

``"full"`` is the published configuration (the benchmark's real speed and memory); ``"small"``
keeps every module, keypoint count, resolution (256² in, 512² out) and file layout with fewer
channels, for CPU tests.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any


def small_config() -> dict[str, Any]:
    from enfoads.core.pipelines.liveportrait_nets import DEFAULT_CONFIG

    cfg = copy.deepcopy(DEFAULT_CONFIG)
    # A 4×2×64×64 feature volume (published: 32×16×64×64): the dense motion network's 7³
    # mask convolution, most of a frame's work, shrinks with the depth.
    cfg["appearance_feature_extractor"].update(
        block_expansion=8, max_features=8, reshape_channel=4, reshape_depth=2, num_resblocks=1
    )
    cfg["motion_extractor"].update(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])
    cfg["warping_module"].update(block_expansion=4, max_features=8, reshape_channel=4)
    cfg["warping_module"]["dense_motion_params"].update(
        block_expansion=4, max_features=16, num_blocks=2, reshape_depth=2, compress=1
    )
    cfg["spade_generator"].update(
        block_expansion=4, max_features=16, out_channels=8, spade_hidden=8
    )
    return cfg


def build_liveportrait(folder: Path, size: str = "small", seed: int = 5) -> Path:
    """Random-weight LivePortrait networks written to ``folder`` in the published layout."""
    import torch

    from enfoads.core.pipelines.liveportrait import save_nets
    from enfoads.core.pipelines.liveportrait_nets import DEFAULT_CONFIG, LivePortraitNets

    torch.manual_seed(seed)
    nets = LivePortraitNets(small_config() if size == "small" else copy.deepcopy(DEFAULT_CONFIG))
    # Random retargeting MLPs would move the face by their biases alone: without them, like the
    # trained ones, their offsets grow with how far a ratio moves from the photo's.
    with torch.no_grad():
        for mlp in (nets.stitching, nets.lip, nets.eye):
            for layer in mlp.mlp:
                if isinstance(layer, torch.nn.Linear):
                    layer.bias.zero_()
    save_nets(nets.eval(), folder)
    return folder
