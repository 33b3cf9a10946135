"""Offline stand-ins for the magic prompt's text models, loaded by the real loading code.

- ``write_real_clip_tokenizer``: the real CLIP BPE (49,408 tokens, the merges SDXL's two text
  encoders use), rebuilt in transformers' layout from the ``bpe_simple_vocab_16e6.txt.gz`` that
  the ``open-clip-torch`` wheel ships (read as a file: open_clip is never imported).
- ``build_tiny_marian``: a random-weight MarianMT (Helsinki-NLP/opus-mt-es-en's architecture,
  tiny) with a SentencePiece vocabulary trained on the given sentences, saved in the hub's
  layout (``config.json``, ``model.safetensors``, ``source.spm``, ``target.spm``,
  ``vocab.json``). Its pieces are whole words (SentencePiece's word model), so its random
  "translations" are strings of words, which is what the rules must survive.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from enfoads.testing.sdxl import _bytes_to_unicode


def clip_bpe_file() -> Path | None:
    spec = importlib.util.find_spec("open_clip")  # finds the folder; does not import it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    return path if path.is_file() else None


def write_real_clip_tokenizer(folder: Path) -> Path:
    """CLIP's tokenizer files in ``folder`` (as in SDXL's ``tokenizer/``); FileNotFoundError
    when open-clip-torch is not installed."""
    source = clip_bpe_file()
    if source is None:
        raise FileNotFoundError("open-clip-torch (its bpe_simple_vocab_16e6.txt.gz) is needed")
    merges = gzip.decompress(source.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in merges[1 : 49152 - 256 - 2 + 1]]
    vocab = list(_bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}), "utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", "utf-8"
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "do_lower_case": True,
            }
        ),
        "utf-8",
    )
    return folder


def build_tiny_marian(folder: Path, sentences: list[str]) -> Path:
    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(sentences * 3), "utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "spm"),
        vocab_size=300,
        model_type="word",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    corpus.unlink()
    processor = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    tokens = (
        ["</s>", "<unk>"] + [p for p in pieces if p not in ("<unk>", "<s>", "</s>")] + ["<pad>"]
    )
    (folder / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(tokens)}), "utf-8")
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes((folder / "spm.model").read_bytes())
    for name in ("spm.model", "spm.vocab"):
        (folder / name).unlink()
    tokenizer = MarianTokenizer(
        str(folder / "source.spm"),
        str(folder / "target.spm"),
        str(folder / "vocab.json"),
        source_lang="es",
        target_lang="en",
    )
    pad = len(tokens) - 1
    config = MarianConfig(
        vocab_size=len(tokens),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        pad_token_id=pad,
        eos_token_id=0,
        decoder_start_token_id=pad,
        forced_eos_token_id=0,
        max_length=64,
    )
    import torch

    torch.manual_seed(0)
    MarianMTModel(config).eval().save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
