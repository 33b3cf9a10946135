"""Subtitles: faster-whisper word timings, with the script's own words aligned onto them.

A rendered ad always knows its script, so whisper is asked only *when* each word is said: the
script's words are matched to whisper's (difflib on normalised words), matched words take
whisper's times, and unmatched ones share the time between their matched neighbours by length.
The cues then show exactly the script, never whisper's spelling of it.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enfoads.core.capability import Capability, ModelSpec
from enfoads.core.errors import InvalidInput, ModelNotDownloaded, ModelUnavailable
from enfoads.core.pipelines.base import hub_reachable, is_local
from enfoads.core.vram import CTranslate2Adapter

log = logging.getLogger(__name__)

MODEL_NAME = "whisper"
WHISPER_RATE = 16000
SIZES = {"tiny": 75, "base": 145, "small": 484, "medium": 1530}  # MB, CTranslate2 fp16


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class CueRules:
    max_chars: int = 42  # per line, when the font is not known
    max_lines: int = 2
    min_duration: float = 0.8
    max_duration: float = 6.0
    # The real font's test, when the video knows it: whether a line fits the safe zone.
    fits: Callable[[str], bool] | None = None

    def line_fits(self, text: str) -> bool:
        return self.fits(text) if self.fits is not None else len(text) <= self.max_chars


def normalise(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return re.sub(r"[^\w]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def align_script(script: str, heard: list[Word], duration: float) -> list[Word]:
    """The script's words with times taken from ``heard`` (whisper's words)."""
    words = script.split()
    if not words:
        return []
    a = [normalise(w) for w in words]
    b = [normalise(w.text) for w in heard]
    times: list[tuple[float, float] | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            h = heard[block.b + k]
            times[block.a + k] = (h.start, max(h.end, h.start + 0.05))
    # Replaced spans in equal-length opcodes map one to one (whisper heard a near-homophone).
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                h = heard[j1 + k]
                times[i1 + k] = (h.start, max(h.end, h.start + 0.05))
    # Words still without a time share the gap between their timed neighbours by length.
    out: list[Word] = []
    i = 0
    while i < len(words):
        if times[i] is not None:
            out.append(Word(words[i], *times[i]))
            i += 1
            continue
        j = i
        while j < len(words) and times[j] is None:
            j += 1
        left = times[i - 1][1] if i > 0 else 0.0
        right = times[j][0] if j < len(words) else duration
        right = max(right, left + 0.1 * (j - i))
        weights = np.array([len(w) + 1 for w in words[i:j]], float)
        edges = left + (right - left) * np.concatenate([[0], np.cumsum(weights) / weights.sum()])
        out += [Word(words[k], float(edges[k - i]), float(edges[k - i + 1])) for k in range(i, j)]
        i = j
    # Keep times monotonic.
    fixed, last = [], 0.0
    for w in out:
        start = max(w.start, last)
        end = max(w.end, start + 0.05)
        fixed.append(Word(w.text, start, end))
        last = start
    return fixed


def wrap(words: list[str], fits: int | Callable[[str], bool]) -> list[str]:
    """Words into lines that ``fits`` (a test, or a number of characters)."""
    if isinstance(fits, int):
        limit = fits
        fits = lambda line: len(line) <= limit  # noqa: E731
    lines, current = [], ""
    for w in words:
        if current and not fits(f"{current} {w}"):
            lines.append(current)
            current = w
        else:
            current = f"{current} {w}".strip()
    if current:
        lines.append(current)
    return lines


def balanced_lines(words: list[str], rules: CueRules) -> list[str]:
    """Two lines of similar length when the words need two (no one-word line at the end)."""
    lines = wrap(words, rules.line_fits)
    if len(lines) != 2:
        return lines
    best = lines
    for cut in range(1, len(words)):
        top, bottom = " ".join(words[:cut]), " ".join(words[cut:])
        if rules.line_fits(top) and rules.line_fits(bottom):
            if abs(len(top) - len(bottom)) < abs(len(best[0]) - len(best[1])):
                best = [top, bottom]
    return best


def make_cues(words: list[Word], rules: CueRules = CueRules()) -> list[Cue]:
    """Group words into cues: at most ``max_lines`` lines that fit (the font's width, or
    ``max_chars``), at most
    ``max_duration`` s, breaking after sentence ends, never leaving one word alone."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    for w in words:
        candidate = current + [w]
        fits = len(wrap([x.text for x in candidate], rules.line_fits)) <= rules.max_lines
        short = candidate[-1].end - candidate[0].start <= rules.max_duration
        if current and not (fits and short):
            groups.append(current)
            current = [w]
        else:
            current = candidate
        if re.search(r"[.!?…]$", w.text) and len(current) > 1:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    # No orphans: a one-word cue borrows the previous cue's last word (when it still fits).
    for i in range(1, len(groups)):
        if (
            len(groups[i]) == 1
            and len(groups[i - 1]) > 2
            and not re.search(r"[.!?…]$", groups[i - 1][-1].text)
        ):
            moved = [groups[i - 1][-1], *groups[i]]
            if len(wrap([x.text for x in moved], rules.line_fits)) <= rules.max_lines:
                groups[i - 1], groups[i] = groups[i - 1][:-1], moved
    cues = []
    for i, group in enumerate(groups):
        start, end = group[0].start, group[-1].end
        limit = groups[i + 1][0].start if i + 1 < len(groups) else end + rules.min_duration
        end = max(end, min(start + rules.min_duration, limit))
        lines = tuple(balanced_lines([w.text for w in group], rules))
        cues.append(Cue(start, end, lines, tuple(group)))
    return cues


def timestamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: list[Cue]) -> str:
    return "\n".join(
        f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, 1)
    )


def from_srt(text: str) -> list[Cue]:
    """The cues of an SRT (its times and lines; no word timings), malformed blocks skipped."""
    stamp = r"(\d+):(\d{2}):(\d{2})[,.](\d{3})"
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.splitlines()
        at = next((i for i, line in enumerate(lines) if "-->" in line), None)
        found = re.search(stamp + r"\s*-->\s*" + stamp, lines[at]) if at is not None else None
        if not found:
            continue
        g = [int(x) for x in found.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        said = tuple(line.strip() for line in lines[at + 1 :] if line.strip())
        if said and end > start:
            cues.append(Cue(start, end, said, ()))
    return cues


def to_vtt(cues: list[Cue], karaoke: bool = False) -> str:
    """WebVTT; with ``karaoke`` each word after the first carries its start time (players
    highlight words as they are said)."""
    blocks = ["WEBVTT\n"]
    for c in cues:
        if karaoke:
            parts, k = [], 0
            for line in c.lines:
                tokens = []
                for word in line.split():
                    w = c.words[k]
                    tokens.append(word if k == 0 else f"<{timestamp(w.start, '.')}>{word}")
                    k += 1
                parts.append(" ".join(tokens))
            text = "\n".join(parts)
        else:
            text = c.text
        blocks.append(f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n{text}\n")
    return "\n".join(blocks)


def resample(samples: np.ndarray, rate: int, target: int = WHISPER_RATE) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32)
    positions = np.arange(int(len(samples) * target / rate)) * rate / target
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


class SubtitlePipeline(Capability):
    """Word timings from faster-whisper, aligned to the script, cut into cues."""

    name = "subtitles"

    def models(self) -> list[ModelSpec]:
        spec = self.settings.subtitle_model
        return [
            ModelSpec(
                MODEL_NAME,
                self.name,
                f"faster-whisper {Path(spec).name}",
                "MIT",
                self.estimate_bytes(),
                self.on_disk,
                load=self.load,
                memory_bytes=self.estimate_bytes,
                adapter=CTranslate2Adapter(),
            )
        ]

    def on_disk(self) -> bool:
        spec = self.settings.subtitle_model
        return is_local(spec) or any((self.settings.models_dir / "whisper").glob(f"*{spec}*"))

    def load(self) -> Any:
        from faster_whisper import WhisperModel

        spec = self.settings.subtitle_model
        root = self.settings.models_dir / "whisper"
        offline = not is_local(spec) and not hub_reachable()
        if offline and not any(root.glob(f"*{spec}*")):
            raise ModelNotDownloaded(f"faster-whisper {spec}")
        device = self.services.models.device
        try:
            return WhisperModel(
                spec,
                device=device,
                compute_type="float16" if device == "cuda" else "int8",
                download_root=str(root),
                local_files_only=offline,
            )
        except Exception as exc:  # hub, ctranslate2 and file errors alike
            raise ModelUnavailable(
                f"faster-whisper {spec}", f"{type(exc).__name__}: {exc}"
            ) from exc

    def estimate_bytes(self) -> int:
        spec = self.settings.subtitle_model
        if is_local(spec):
            return sum(p.stat().st_size for p in Path(spec).expanduser().glob("*.bin"))
        return SIZES.get(spec.removesuffix(".en"), 500) * 2**20

    def transcribe_words(
        self, samples: np.ndarray, rate: int, language: str = "auto"
    ) -> list[Word]:
        if language not in ("auto", "es", "en"):
            raise InvalidInput(
                "error.unknown_choice", field="language", value=language, choices="auto, es, en"
            )
        audio = resample(samples, rate)
        if audio.size < WHISPER_RATE // 10:
            raise InvalidInput("error.silent_audio", field="audio")
        with self.services.models.use(MODEL_NAME) as model:
            segments, _ = model.transcribe(
                audio,
                word_timestamps=True,
                beam_size=1,
                language=None if language == "auto" else language,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            return [
                Word(w.word.strip(), float(w.start), float(w.end))
                for s in segments
                for w in (s.words or [])
            ]

    def subtitles(
        self,
        samples: np.ndarray,
        rate: int,
        script: str | None = None,
        *,
        language: str = "auto",
        rules: CueRules = CueRules(),
    ) -> list[Cue]:
        heard = self.transcribe_words(samples, rate, language)
        duration = len(samples) / rate
        words = align_script(script, heard, duration) if script else heard
        return make_cues(words, rules)
