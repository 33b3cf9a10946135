"""Benchmark: writing result PNGs, Pillow (zlib levels 6, 3 and 1, one thread) against the
studio's writer (``enfoads/core/pngfile.py``: Up filter, zlib level 3, strips on up to four
threads).

Every image result (generation, face swap) is stored as a PNG with its AI-label text chunks,
on the job's path. Photographs from scikit-image (astronaut, coffee, chelsea) scaled to the
SDXL size (1024²) and to a 1080p frame stand in for results, and uniform noise (what random
SDXL weights make: the worst case for any compressor); the same run times every writer and
reports the studio's speed-up and size against Pillow at the same level.

    python benchmarks/png.py --json docs/benchmarks/png-2core.json
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import run_record, timed, write_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import numpy as np
    from PIL import Image
    from skimage import data

    from enfoads.core import pngfile
    from enfoads.core.assets import PNG_COMPRESS_LEVEL, png_with_metadata

    photos = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
    sizes = {"1024x1024": (1024, 1024), "1920x1080": (1920, 1080)}
    label = {"ai_generated": "true", "model": "benchmark"}
    rng = np.random.default_rng(0)
    rows = []
    for size_name, size in sizes.items():
        for photo_name, pixels in [*photos.items(), ("noise", None)]:
            if pixels is None:
                image = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
            else:
                image = Image.fromarray(pixels).resize(size, Image.LANCZOS)
            row = {"size": size_name, "photo": photo_name}
            for level in (6, PNG_COMPRESS_LEVEL, 1):
                seconds = timed(
                    lambda im=image, lv=level: im.save(io.BytesIO(), "PNG", compress_level=lv),
                    args.repeat,
                )
                out = io.BytesIO()
                image.save(out, "PNG", compress_level=level)
                row[f"pillow{level}_ms"] = round(1000 * seconds, 1)
                row[f"pillow{level}_kb"] = round(len(out.getvalue()) / 1024)
            seconds = timed(lambda im=image: png_with_metadata(im, label), args.repeat)
            row["studio_ms"] = round(1000 * seconds, 1)
            row["studio_kb"] = round(len(png_with_metadata(image, label)) / 1024)
            row["speedup"] = round(row[f"pillow{PNG_COMPRESS_LEVEL}_ms"] / row["studio_ms"], 2)
            row["size_vs_pillow"] = round(
                row["studio_kb"] / row[f"pillow{PNG_COMPRESS_LEVEL}_kb"], 3
            )
            rows.append(row)
            print(row, flush=True)
    write_json(
        args.json,
        run_record(studio_level=PNG_COMPRESS_LEVEL, threads=pngfile.threads(), results=rows),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
