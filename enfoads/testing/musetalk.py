"""MuseTalk stand-ins: the real network classes (diffusers' UNet2DConditionModel and
AutoencoderKL, transformers' Whisper) with random weights, saved in the published layouts so
the studio's own loader reads them: ``musetalkV15/musetalk.json`` + ``unet.pth`` (a PyTorch
state dict), the VAE's ``config.json`` + safetensors, whisper-tiny's config, safetensors and
feature-extractor config.

``"full"`` is the published UNet configuration (the benchmark's real speed and memory);
``"small"`` keeps the UNet's structure (8 input channels, cross-attention to the audio, the
same block kinds) with a few channels, a two-level VAE and a two-layer Whisper, for CPU tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def small_unet_config(audio_width: int) -> dict[str, Any]:
    return {
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [32, 64],
        "cross_attention_dim": audio_width,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "in_channels": 8,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "out_channels": 4,
        "sample_size": 32,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    }


def build_musetalk(folder: Path, size: str = "small", seed: int = 0) -> dict[str, Path]:
    """The three folders (``unet``, ``vae``, ``audio``) for the ``lipsync_*`` settings."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    from enfoads.core.pipelines.lipsync import UNET_CONFIG

    torch.manual_seed(seed)
    small = size == "small"
    width = 32 if small else 384
    whisper_config = WhisperConfig(
        d_model=width,
        encoder_layers=2 if small else 4,
        decoder_layers=1 if small else 4,
        encoder_attention_heads=4 if small else 6,
        decoder_attention_heads=4 if small else 6,
        encoder_ffn_dim=4 * width,
        decoder_ffn_dim=4 * width,
        num_mel_bins=80,
        vocab_size=64 if small else 51865,
        max_source_positions=1500,
        max_target_positions=32 if small else 448,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    audio = folder / "whisper"
    WhisperModel(whisper_config).save_pretrained(audio, safe_serialization=True)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(audio)
    vae = folder / "sd-vae"
    vae_config = (
        {"block_out_channels": [16, 32, 32, 32], "layers_per_block": 1, "norm_num_groups": 8}
        if small
        else {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2}
    )
    AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        sample_size=256,
        **vae_config,
    ).save_pretrained(vae, safe_serialization=True)
    unet_dir = folder / "musetalk"
    (unet_dir / "musetalkV15").mkdir(parents=True, exist_ok=True)
    config = small_unet_config(width) if small else dict(UNET_CONFIG)
    published = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0.dev0"}
    (unet_dir / "musetalkV15" / "musetalk.json").write_text(
        json.dumps({**published, **config}, indent=1), encoding="utf-8"
    )
    unet = UNet2DConditionModel(**config)
    torch.save(unet.state_dict(), unet_dir / "musetalkV15" / "unet.pth")
    return {"unet": unet_dir, "vae": vae, "audio": audio}
