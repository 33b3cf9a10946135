"""Benchmark: the face swap's own overhead per image and per 1080p frame.

With the ONNX fixtures (``enfoads/testing/faces.py``: InsightFace's exact signatures, tiny
graphs), the time left is ours and InsightFace's Python: decode, detection pre/post-processing,
alignment, paste-back, encode. Compared in the same run:

- ``insightface``: InsightFace's own ``INSwapper.get(..., paste_back=True)`` (full-frame warps,
  erode and blur over the whole image);
- ``ours``: ``paste_back`` (work on the crop's bounding box only, feathered mask, LAB colour
  match).

    python benchmarks/faceswap.py --json docs/benchmarks/faceswap-cpu.json

``--video-frames N`` adds a video swap of N 1080p frames (decode and H.264 encode by ffmpeg
included), compared in the same run with InsightFace's own per-frame loop
(``FaceAnalysis.get`` + ``INSwapper.get(paste_back=True)`` on one thread):

- ``ours``: the Studio's ``face_swap_video`` job: detection only on each frame, our paste-back,
  frames on worker threads.

Timing the real models (on Colab, after they are downloaded into the data dir):

    python benchmarks/faceswap.py --real --json faceswap-t4.json
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import run_record, timed, write_json


def video_swap(studio, models, frame, face, tmp: Path, count: int) -> dict:
    """InsightFace's per-frame loop vs our job, on the same 1080p clip, both through ffmpeg."""
    import io

    import numpy as np
    from PIL import Image

    from enfoads.core import media

    clip = tmp / "clip.mp4"
    with media.FrameWriter(clip, frame.shape[1], frame.shape[0], 25) as writer:
        for i in range(count):
            writer.write(np.roll(frame, 4 * i, axis=1))
    source = models.analysis.get(np.ascontiguousarray(face[:, :, ::-1]))[0]

    def insightface_loop() -> None:
        with media.FrameWriter(tmp / "baseline.mp4", frame.shape[1], frame.shape[0], 25) as out:
            for rgb in media.read_frames(clip):
                bgr = np.ascontiguousarray(rgb[:, :, ::-1])
                for target in models.analysis.get(bgr):
                    bgr = models.swapper.get(bgr, target, source, paste_back=True)
                out.write(bgr[:, :, ::-1])

    buf = io.BytesIO()
    Image.fromarray(face).save(buf, "PNG")
    src = studio.upload_asset(buf.getvalue(), "me.png")
    video = studio.upload_asset(clip.read_bytes(), "clip.mp4")

    swapped = []

    def ours() -> None:
        job = studio.swap_faces_video(source_asset_id=src.id, video_asset_id=video.id)
        done = studio.wait_job(job.id, timeout=1800)
        assert done.state.value == "completed", done.error
        swapped.append(done.result["frames_swapped"])

    baseline_s, ours_s = timed(insightface_loop, 1), timed(ours, 1)
    result = {
        "frames": count,
        "size": f"{frame.shape[1]}x{frame.shape[0]}",
        "frame_workers": media.frame_workers(4),
        "frames_swapped": swapped[-1],
        "insightface_loop_s": round(baseline_s, 2),
        "ours_s": round(ours_s, 2),
        "insightface_fps": round(count / baseline_s, 1),
        "ours_fps": round(count / ours_s, 1),
        "speedup": round(baseline_s / ours_s, 2),
    }
    print("video", result, flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--real", action="store_true", help="the real buffalo_l + inswapper_128 from the data dir"
    )
    parser.add_argument(
        "--video-frames",
        type=int,
        default=0,
        help="also time a video swap of this many 1080p frames (fixtures only)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import cv2
    import numpy as np
    from PIL import Image

    from enfoads.core.pipelines.faceswap import FaceModels, paste_back, providers_for
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio
    from enfoads.core.vram import resolve_device
    from enfoads.testing.faces import astronaut_rgb, build_face_models

    device = resolve_device(args.device)
    results = run_record(
        device=device, providers=providers_for(device), models="real" if args.real else "fixtures"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.real:
            settings = load_settings(device=device)
            from enfoads.core.pipelines.faceswap import analysis_dir, swapper_file

            models = FaceModels(analysis_dir(settings), swapper_file(settings)).build(device)
        else:
            paths = build_face_models(tmp / "faces")
            settings = load_settings(
                data_dir=tmp / "data",
                device=device,
                faceswap_analysis_model=str(paths["analysis"]),
                faceswap_swapper_model=str(paths["swapper"]),
            )
            models = FaceModels(paths["analysis"], paths["swapper"]).build(device)
        results["providers_in_use"] = models.providers_in_use()
        face = astronaut_rgb()
        # A 1080p frame: the detector letterboxes 1920 wide into 640 (÷ 3), and the fixture knows
        # the face at × 1.25 of the 512 photo there, so the photo is scaled × 3.75 (a real video
        # frame's face size; the real detector has no such limit).
        frame = cv2.resize(face, (1920, 1920))[:1080]
        frame_bgr = np.ascontiguousarray(frame[:, :, ::-1])
        image_bgr = np.ascontiguousarray(face[:, :, ::-1])
        source = models.analysis.get(image_bgr)[0]
        out = {}
        for name, target in (("image_512", image_bgr), ("frame_1080p", frame_bgr)):
            faces = models.analysis.get(target)
            if not faces:
                out[name] = {"faces": 0}
                continue
            target_face = faces[0]
            fake, matrix = models.swapper.get(target, target_face, source, paste_back=False)
            crop = cv2.warpAffine(target, matrix, (fake.shape[0],) * 2)
            stages = {
                "detect_align_embed_ms": timed(
                    lambda t=target: models.analysis.get(t), args.repeat
                ),
                "swap_model_ms": timed(
                    lambda t=target: models.swapper.get(t, target_face, source, paste_back=False),
                    args.repeat,
                ),
                "paste_back_ours_ms": timed(
                    lambda t=target: paste_back(t.copy(), fake, crop, matrix), args.repeat
                ),
                "paste_back_insightface_ms": timed(
                    lambda t=target: models.swapper.get(t, target_face, source, paste_back=True),
                    args.repeat,
                )
                - timed(
                    lambda t=target: models.swapper.get(t, target_face, source, paste_back=False),
                    args.repeat,
                ),
            }
            png = io.BytesIO()
            Image.fromarray(target[:, :, ::-1]).save(png, "PNG")
            data = png.getvalue()
            stages["decode_ms"] = timed(
                lambda d=data: np.asarray(Image.open(io.BytesIO(d)).convert("RGB")), args.repeat
            )
            stages["encode_png_ms"] = timed(
                lambda t=target: Image.fromarray(t).save(io.BytesIO(), "PNG"), args.repeat
            )
            stages = {k: round(v * 1000, 2) for k, v in stages.items()}
            stages["paste_back_speedup"] = round(
                stages["paste_back_insightface_ms"] / max(stages["paste_back_ours_ms"], 1e-3), 2
            )
            ours_total = (
                stages["decode_ms"]
                + stages["detect_align_embed_ms"]
                + stages["swap_model_ms"]
                + stages["paste_back_ours_ms"]
                + stages["encode_png_ms"]
            )
            stages["total_ours_ms"] = round(ours_total, 2)
            out[name] = stages
            print(name, stages, flush=True)
        results["results"] = out
        # End to end through the Studio (the API's path: decode, both analyses, store).
        if not args.real:
            with Studio(settings) as studio:
                from enfoads.core.pipelines.faceswap import ImageInput

                buf = io.BytesIO()
                Image.fromarray(face).save(buf, "PNG")
                item = ImageInput(data=buf.getvalue(), name="a.png")
                swap = studio.pipelines["faceswap"]
                swap.swap_image(item, item)  # warm-up (loads the sessions)
                results["studio_swap_image_ms"] = round(
                    1000 * timed(lambda: swap.swap_image(item, item), 5), 1
                )
                if args.video_frames:
                    results["video"] = video_swap(
                        studio, models, frame, face, tmp, args.video_frames
                    )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
