"""Benchmark: writing result PNGs, Pillow's default zlib level (6) against the studio's (3).

Every image result (generation, face swap) is stored as a PNG with its AI-label text chunks,
on the request's path. Photographs from scikit-image (astronaut, coffee, chelsea) scaled to
the SDXL size (1024²) and to a 1080p frame stand in for results; the same run times both levels
(and level 1) and reports the ratio and the size cost.

    python benchmarks/png.py --json docs/benchmarks/png-2core.json
"""

from __future__ import annotations

import argparse
import io
import sys
import time
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

    from enfoads.core.assets import PNG_COMPRESS_LEVEL, png_with_metadata

    photos = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
    sizes = {"1024x1024": (1024, 1024), "1920x1080": (1920, 1080)}
    label = {"ai_generated": "true", "model": "benchmark"}
    rows = []
    for size_name, size in sizes.items():
        for photo_name, pixels in photos.items():
            image = Image.fromarray(np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS)))
            row = {"size": size_name, "photo": photo_name}
            for level in (6, PNG_COMPRESS_LEVEL, 1):
                seconds = timed(
                    lambda im=image, lv=level: im.save(io.BytesIO(), "PNG", compress_level=lv),
                    args.repeat,
                )
                out = io.BytesIO()
                image.save(out, "PNG", compress_level=level)
                row[f"level{level}_ms"] = round(1000 * seconds, 1)
                row[f"level{level}_kb"] = round(len(out.getvalue()) / 1024)
            t0 = time.perf_counter()
            png_with_metadata(image, label)  # the studio's own call, for the record
            row["studio_ms"] = round(1000 * (time.perf_counter() - t0), 1)
            row["speedup"] = round(row["level6_ms"] / row[f"level{PNG_COMPRESS_LEVEL}_ms"], 2)
            row["size_cost"] = round(row[f"level{PNG_COMPRESS_LEVEL}_kb"] / row["level6_kb"] - 1, 3)
            rows.append(row)
            print(row, flush=True)
    write_json(args.json, run_record(studio_level=PNG_COMPRESS_LEVEL, results=rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
