"""Random-weight SDXL models built from configs, saved in the hub's folder layout.

Used by the tests (tiny), the benchmark (full-size architecture: random weights run at the real
model's speed and memory) and the notebook's offline test mode. The studio then loads them
through its real loading code, pointing ``ENFOADS_IMAGE_*_MODEL`` at the folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# SDXL base 1.0's published configs (unet/config.json, vae/config.json, text_encoder*/).
SDXL_UNET = dict(
    act_fn="silu",
    addition_embed_type="text_time",
    addition_embed_type_num_heads=64,
    addition_time_embed_dim=256,
    attention_head_dim=[5, 10, 20],
    block_out_channels=[320, 640, 1280],
    cross_attention_dim=2048,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    in_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    out_channels=4,
    projection_class_embeddings_input_dim=2816,
    sample_size=128,
    transformer_layers_per_block=[1, 2, 10],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    use_linear_projection=True,
)
SDXL_VAE = dict(
    act_fn="silu",
    block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.13025,
)
SDXL_TE1 = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    hidden_act="quick_gelu",
    projection_dim=768,
)
SDXL_TE2 = dict(
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=20,
    hidden_act="gelu",
    projection_dim=1280,
)
SDXL_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    prediction_type="epsilon",
    steps_offset=1,
    timestep_spacing="leading",
    interpolation_type="linear",
    use_karras_sigmas=False,
)

# The tiny versions keep SDXL's structure (two text encoders, text-time embedding, VAE factor 8)
# at a size that runs a 1024² image in seconds on 2 CPU cores.
TINY_UNET = dict(
    SDXL_UNET,
    addition_embed_type_num_heads=2,
    addition_time_embed_dim=8,
    attention_head_dim=[2, 4],
    block_out_channels=[32, 64],
    cross_attention_dim=64,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
    layers_per_block=1,
    norm_num_groups=8,
    projection_class_embeddings_input_dim=8 * 6 + 32,
    sample_size=32,
    transformer_layers_per_block=[1, 1],
    up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
)
TINY_VAE = dict(SDXL_VAE, block_out_channels=[8, 8, 16, 16], layers_per_block=1, norm_num_groups=4)
TINY_TE1 = dict(
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
    hidden_act="gelu",
    projection_dim=32,
)
TINY_TE2 = dict(TINY_TE1)


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte-to-character table (the BPE alphabet)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_clip_tokenizer(folder: Path) -> int:
    """A real CLIP BPE tokenizer with a byte-level vocabulary and no merges.

    Every character is a token, so any prompt (Spanish accents included) tokenizes. Returns
    the vocabulary size.
    """
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            }
        )
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            }
        )
    )
    return len(vocab)


def build_components(
    size: str = "tiny", seed: int = 0, dtype: Any = None, device: str = "cpu"
) -> dict[str, Any]:
    """Random-weight SDXL components (``size`` is ``tiny`` or ``full``), tokenizers excluded."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    full = size == "full"
    vocab = 49408 if full else 514
    eos = vocab - 1
    text = dict(
        vocab_size=vocab,
        max_position_embeddings=77,
        bos_token_id=vocab - 2,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**(SDXL_UNET if full else TINY_UNET))
        vae = AutoencoderKL(**(SDXL_VAE if full else TINY_VAE))
        te1 = CLIPTextModel(CLIPTextConfig(**text, **(SDXL_TE1 if full else TINY_TE1)))
        te2 = CLIPTextModelWithProjection(
            CLIPTextConfig(**text, **(SDXL_TE2 if full else TINY_TE2))
        )
    if dtype is not None:
        for module in (unet, vae, te1, te2):
            module.to(dtype)
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": te1,
        "text_encoder_2": te2,
        "scheduler": EulerDiscreteScheduler(**SDXL_SCHEDULER),
    }


def build_sdxl_folders(root: Path, size: str = "tiny", seed: int = 0) -> dict[str, Path]:
    """Save random SDXL as the three sources the studio reads, in the hub's layouts:

    ``base/`` (a diffusers SDXL folder), ``lightning/sdxl_lightning_{2,4,8}step_unet.safetensors``
    (a single-file UNet state dict, like ByteDance's) and ``vae/`` (an AutoencoderKL folder
    with ``force_upcast: false``, like the fp16-fix VAE).
    """
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file
    from transformers import CLIPTokenizer

    parts = build_components(size, seed)
    write_clip_tokenizer(root / "tok")
    tokenizer = CLIPTokenizer.from_pretrained(root / "tok")
    pipe = StableDiffusionXLPipeline(tokenizer=tokenizer, tokenizer_2=tokenizer, **parts)
    pipe.save_pretrained(root / "base", safe_serialization=True)
    lightning = root / "lightning"
    lightning.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in parts["unet"].state_dict().items()}
    for steps in (2, 4, 8):
        save_file(state, lightning / f"sdxl_lightning_{steps}step_unet.safetensors")
    vae = parts["vae"]
    vae.register_to_config(force_upcast=False)
    vae.save_pretrained(root / "vae", safe_serialization=True)
    return {"base": root / "base", "unet": lightning, "vae": root / "vae"}


def build_tiny_llm(root: Path, seed: int = 0) -> Path:
    """A tiny random Qwen2 causal LM with a byte-level BPE tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    # A byte-level BPE like Qwen's own, trained here on a few ad words.
    corpus = [
        "a red sneaker on the beach at sunset with soft light",
        "product photo of a coffee cup on a wooden table in a studio",
        "vibrant summer ad for a bold modern clean brand",
    ]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    vocab = tok.get_vocab()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    model = Qwen2ForCausalLM(config)
    folder = root / "llm"
    model.save_pretrained(folder, safe_serialization=True)
    fast.save_pretrained(folder)
    return folder
