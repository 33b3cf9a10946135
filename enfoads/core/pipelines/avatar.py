"""Talking avatar: a portrait photo and a voice track become a clip whose mouth follows speech.

The built-in ``TalkingPhotoAnimator`` warps the photo: everything under the line where the lips
part (under the teeth, in a smile that shows them) drops with the audio's loudness, and the
lens-shaped gap it leaves is shaded as the inside of the mouth; the eyelids close every few
seconds, and the head sways slightly. Only a soft region around the head moves; the rest of
the photo stays still. Face geometry comes from InsightFace's 106-point landmarks when the
``buffalo_l`` pack is on disk *and* the shop has accepted its non-commercial licence
(``faceswap_licence_accepted``); otherwise from scikit-image's LBP frontal-face cascade
(shipped with scikit-image, BSD-3: clear for commercial use). OpenCV 5, which Colab ships,
dropped ``CascadeClassifier``. The video records which finder ran (``FACE_FINDERS``), so its
asset says whether it is clear for commercial use (``core.licences``).

``Animator`` is what both animators implement: this one and LivePortrait (``liveportrait.py``),
which ``AvatarCapability`` picks per video.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from enfoads.core.capability import Capability, Services
from enfoads.core.errors import EnfoadsError, InvalidInput

if TYPE_CHECKING:
    from enfoads.core.pipelines.faceswap import FaceSwapPipeline
    from enfoads.core.pipelines.lipsync import LipSyncCapability
    from enfoads.core.pipelines.liveportrait import LivePortraitCapability

ANIMATORS = ("auto", "lipsync", "liveportrait", "classic")
# The model id each face finder leaves in a video's lineage (``FaceGeometry.source``).
FACE_FINDERS = {"insightface": "insightface/buffalo_l", "cascade": "scikit-image/lbp-frontal-face"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceGeometry:
    box: tuple[float, float, float, float]
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    eye_size: tuple[float, float]  # width, height of one eye
    mouth: tuple[float, float]
    mouth_width: float
    source: str  # insightface or cascade

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


@dataclass(frozen=True)
class DriveSignal:
    """Per-frame controls of an animator, all in [0, 1] except the head pose."""

    fps: int
    mouth_open: np.ndarray
    blink: np.ndarray
    head: np.ndarray  # (frames, 3): dx, dy as fractions of the face width, angle in degrees

    @property
    def frames(self) -> int:
        return len(self.mouth_open)


class Animator(Protocol):
    """What the video composer needs from an avatar animator (built-in or neural)."""

    name: str

    def prepare(self, portrait: np.ndarray, face: FaceGeometry) -> None: ...

    def frame(self, index: int, drive: DriveSignal) -> np.ndarray: ...


# -- face geometry ----------------------------------------------------------------------
def geometry_from_landmarks(box: Any, points: np.ndarray) -> FaceGeometry:
    """From InsightFace's 2d106 points: left eye 33-42, mouth 52-71, right eye 87-96."""
    left, right, mouth = points[33:43], points[87:97], points[52:72]
    eye_w = float(np.ptp(left[:, 0]) + np.ptp(right[:, 0])) / 2
    eye_h = float(np.ptp(left[:, 1]) + np.ptp(right[:, 1])) / 2
    return FaceGeometry(
        tuple(float(v) for v in box[:4]),
        tuple(left.mean(0)),
        tuple(right.mean(0)),
        (eye_w, max(eye_h, eye_w * 0.35)),
        tuple(mouth.mean(0)),
        float(np.ptp(mouth[:, 0])),
        "insightface",
    )


def geometry_from_box(x: float, y: float, w: float, h: float) -> FaceGeometry:
    """Eyes and mouth at their usual place in a frontal face box (a cascade's box proportions)."""
    return FaceGeometry(
        (x, y, x + w, y + h),
        (x + 0.30 * w, y + 0.38 * h),
        (x + 0.70 * w, y + 0.38 * h),
        (0.22 * w, 0.09 * h),
        (x + 0.5 * w, y + 0.78 * h),
        0.40 * w,
        "cascade",
    )


def cascade_face(rgb: np.ndarray) -> FaceGeometry | None:
    """The largest frontal face that scikit-image's LBP cascade finds (no OpenCV cascade:
    ``cv2.CascadeClassifier`` is gone from OpenCV 5)."""
    from skimage import data
    from skimage.feature import Cascade

    cascade = Cascade(data.lbp_frontal_face_cascade_filename())
    side = min(rgb.shape[:2])
    faces = cascade.detect_multi_scale(
        img=np.ascontiguousarray(rgb[:, :, :3]),
        scale_factor=1.2,
        step_ratio=1,
        min_size=(max(24, side // 12),) * 2,
        max_size=(side, side),
    )
    if not faces:
        return None
    box = max(faces, key=lambda f: f["width"] * f["height"])
    return refine_mouth(
        rgb,
        geometry_from_box(
            float(box["c"]), float(box["r"]), float(box["width"]), float(box["height"])
        ),
    )


def refine_mouth(rgb: np.ndarray, face: FaceGeometry) -> FaceGeometry:
    """Put the mouth on the line where the jaw opens: the darkest row across the middle of the
    mouth is where the lips part, and under teeth that show (a smile) the line moves below."""
    import cv2

    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3]), cv2.COLOR_RGB2GRAY))
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    w, h = x1 - x0, y1 - y0
    (mx, my), width = face.mouth, face.mouth_width
    reach = max(2, int(0.06 * h))
    lo, hi = max(0, int(my) - reach), min(gray.shape[0], int(my) + reach + 1)
    band = gray[lo:hi, x0 + int(0.38 * w) : x0 + int(0.62 * w) + 1].astype(np.float32).mean(axis=1)
    if band.size >= 3:
        smooth = np.convolve(band, np.ones(3) / 3, mode="same")
        my = lo + float(np.argmin(smooth[1:-1]) + 1)
    # A smile showing teeth: the jaw opens under them, not above.
    my = below_teeth(rgb, int(my), x0 + int(0.38 * w), x0 + int(0.62 * w) + 1, int(0.12 * h)) or my
    return FaceGeometry(
        face.box,
        face.left_eye,
        face.right_eye,
        face.eye_size,
        (float(mx), float(my)),
        float(width),
        face.source,
    )


def locate_face(faces: FaceSwapPipeline | None, rgb: np.ndarray, name: str) -> FaceGeometry:
    """InsightFace landmarks (from the face capability) when its models are already on disk
    and the shop accepted their non-commercial licence, else the LBP cascade (BSD-3)."""
    if faces is not None and faces.settings.faceswap_licence_accepted:
        try:
            face = faces.landmarks(rgb)
            if face is not None:
                return refine_mouth(rgb, geometry_from_landmarks(face.bbox, face.landmark_2d_106))
        except EnfoadsError as exc:
            log.warning("InsightFace landmarks unavailable (%s); using the LBP cascade", exc)
    found = cascade_face(rgb)
    if found is None:
        raise InvalidInput("error.no_face", field="avatar", name=name)
    return found


def below_teeth(rgb: np.ndarray, line: int, left: int, right: int, reach: int) -> float | None:
    """The first row under a band of teeth (bright, unsaturated rows) just below ``line``."""
    import cv2

    lo, hi = line + 1, min(rgb.shape[0], line + 1 + max(2, reach))
    if hi <= lo:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[lo:hi, left:right, :3]), cv2.COLOR_RGB2HSV)
    teeth = ((hsv[..., 1] < 60) & (hsv[..., 2] > 150)).mean(axis=1) >= 0.75
    rows = np.flatnonzero(teeth)
    if rows.size == 0:
        return None
    end = rows[0]
    while end + 1 < teeth.size and teeth[end + 1]:
        end += 1
    return float(lo + end + 1)


# -- drive signals ----------------------------------------------------------------------
def frame_count(duration_s: float, fps: int) -> int:
    return max(1, int(round(duration_s * fps)))


def mouth_from_audio(samples: np.ndarray, rate: int, fps: int, frames: int) -> np.ndarray:
    """Mouth opening per frame from the loudness (dB RMS) of the audio around each frame."""
    hop = rate / fps
    out = np.zeros(frames, np.float32)
    for i in range(frames):
        a, b = int(i * hop), int((i + 1) * hop)
        chunk = samples[a:b]
        rms = float(np.sqrt(np.mean(chunk**2))) if chunk.size else 0.0
        out[i] = 20 * math.log10(rms + 1e-6)
    peak = np.percentile(out, 95) if frames else 0
    floor = max(peak - 30.0, -60.0)
    level = np.clip((out - floor) / max(peak - floor, 1e-3), 0, 1)
    level[out < -50] = 0  # silence: closed
    smooth = np.zeros_like(level)
    value = 0.0
    for i, target in enumerate(level):  # fast attack, slower release, as a jaw moves
        value += (target - value) * (0.75 if target > value else 0.45)
        smooth[i] = value
    return smooth


def blinks(frames: int, fps: int, seed: int = 3) -> np.ndarray:
    """Eyelid closure per frame: a 0.2 s blink every 2.5 to 5 s."""
    rng = np.random.default_rng(seed)
    out = np.zeros(frames, np.float32)
    t = rng.uniform(0.8, 2.0)
    shape = np.sin(np.linspace(0, np.pi, max(3, int(0.2 * fps))))
    while t * fps < frames:
        start = int(t * fps)
        end = min(frames, start + len(shape))
        out[start:end] = shape[: end - start]
        t += rng.uniform(2.5, 5.0)
    return out


def head_motion(frames: int, fps: int) -> np.ndarray:
    t = np.arange(frames) / fps
    dx = 0.012 * np.sin(2 * np.pi * t / 4.3)
    dy = 0.008 * np.sin(2 * np.pi * t / 3.1 + 1.0)
    angle = 1.3 * np.sin(2 * np.pi * t / 5.7 + 0.4)
    return np.stack([dx, dy, angle], axis=1).astype(np.float32)


def drive_from_audio(samples: np.ndarray, rate: int, fps: int) -> DriveSignal:
    frames = frame_count(len(samples) / rate, fps)
    if len(samples) == 0 or float(np.abs(samples).max()) < 1e-4:
        raise InvalidInput("error.silent_audio", field="audio")
    return DriveSignal(
        fps,
        mouth_from_audio(samples, rate, fps, frames),
        blinks(frames, fps),
        head_motion(frames, fps),
    )


# -- the built-in animator --------------------------------------------------------------
class TalkingPhotoAnimator:
    """Warps a still portrait: jaw drop from ``mouth_open``, eyelids from ``blink``, head sway."""

    name = "talking-photo"

    def prepare(self, portrait: np.ndarray, face: FaceGeometry) -> None:
        self.base = np.ascontiguousarray(portrait[:, :, :3])
        self.face = face
        height, width = self.base.shape[:2]
        cx, cy = face.centre
        reach_x, reach_y = face.width * 1.0, face.height * 1.05
        self.roi = (
            max(0, int(cx - reach_x)),
            max(0, int(cy - reach_y)),
            min(width, int(cx + reach_x) + 1),
            min(height, int(cy + reach_y) + 1),
        )
        x0, y0, x1, y1 = self.roi
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.xs, self.ys = xs, ys
        # Head region: 1 inside an ellipse around the face, fading to 0 at the ROI's edge.
        r = np.sqrt(((xs - cx) / (face.width * 0.75)) ** 2 + ((ys - cy) / (face.height * 0.8)) ** 2)
        self.head_mask = np.clip((1.3 - r) / 0.3, 0, 1) ** 2
        # Jaw: everything under the line where the lips part drops, the lower lip most, fading
        # towards the chin; across the mouth a lens, full in the middle and closed at the corners.
        mx, my = face.mouth
        lens = np.exp(-(((xs - mx) / (face.mouth_width * 0.36)) ** 2))
        lens[lens < 0.05] = 0.0
        below = (ys - my) / (face.height * 0.35)
        fall = np.clip(ys - my + 0.5, 0, 1) * np.clip(1.0 - below, 0, 1)
        self.jaw = (lens * fall).astype(np.float32)
        self.open_px = face.height * 0.10
        # Where a gap can open at all (the lens, down to the widest opening): the only pixels
        # the mouth shading has to look at, in ROI coordinates.
        cols = np.flatnonzero(lens[0] > 0)
        row0 = max(0, int(my) - y0 - 1)
        self.mouth_box = (
            slice(row0, max(row0, int(my + self.open_px) - y0 + 3)),
            slice(int(cols[0]), int(cols[-1]) + 1) if cols.size else slice(0, 0),
        )
        # Eyelid colour: the skin just above each eye.
        ew, eh = face.eye_size
        self.lids = []
        for ex, ey in (face.left_eye, face.right_eye):
            patch = self.base[
                max(0, int(ey - 2.2 * eh)) : max(1, int(ey - 1.2 * eh)),
                max(0, int(ex - ew / 2)) : max(1, int(ex + ew / 2)),
            ]
            colour = patch.reshape(-1, 3).mean(0) if patch.size else np.array([180, 140, 120])
            mask = np.clip(
                1.2 - np.sqrt(((xs - ex) / (ew * 0.6)) ** 2 + ((ys - ey) / (eh * 0.9)) ** 2), 0, 1
            )
            self.lids.append((colour.astype(np.float32), np.clip(mask * 3, 0, 1)[..., None]))

    def frame(self, index: int, drive: DriveSignal) -> np.ndarray:
        import cv2

        out = self.base.copy()
        x0, y0, x1, y1 = self.roi
        cx, cy = self.face.centre
        dx, dy, angle = drive.head[index]
        a = math.radians(float(angle))
        # Inverse mapping: where each output pixel samples the photo.
        rx, ry = self.xs - cx - dx * self.face.width, self.ys - cy - dy * self.face.width
        src_x = cx + math.cos(a) * rx + math.sin(a) * ry
        src_y = cy - math.sin(a) * rx + math.cos(a) * ry
        m = self.head_mask
        map_x = self.xs + m * (src_x - self.xs)
        opening = float(drive.mouth_open[index]) * self.open_px
        map_y = self.ys + m * (src_y - self.ys) - self.jaw * opening
        region = cv2.remap(
            self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        ).astype(np.float32)
        if opening > 0.5:  # the dark of the open mouth, in the gap the dropped jaw leaves
            my = self.face.mouth[1]
            box = self.mouth_box
            ys = self.ys[box]
            # A pixel under the lip line that samples from above it lies between the lips.
            src = ys - self.jaw[box] * opening
            gap = np.clip(my - src - 0.6, 0, 1) * np.clip(ys - my + 0.5, 0, 1)  # >= 1 px open
            depth = np.clip((ys - my) / max(opening, 1.0), 0, 1)  # darker deeper inside
            alpha = (gap * 0.92)[..., None]
            inside = np.array([70, 30, 32], np.float32) * (1 - 0.45 * depth[..., None])
            region[box] = region[box] * (1 - alpha) + inside * alpha
        closure = float(drive.blink[index])
        if closure > 0.05:
            for colour, mask in self.lids:
                alpha = mask * closure
                region = region * (1 - alpha) + colour * alpha
        out[y0:y1, x0:x1] = region.clip(0, 255).astype(np.uint8)
        return out


def render_frames(animator: Animator, drive: DriveSignal) -> Iterator[np.ndarray]:
    for i in range(drive.frames):
        yield animator.frame(i, drive)


class AvatarCapability(Capability):
    """The talking avatar: face geometry (InsightFace's landmarks through the face capability,
    else the cascade) and the animators."""

    name = "avatar"
    needs = ("faceswap", "liveportrait", "lipsync")

    def __init__(self, services: Services):
        super().__init__(services)
        self.faces: FaceSwapPipeline = services.need("faceswap")
        self.liveportrait: LivePortraitCapability = services.need("liveportrait")
        self.lipsync: LipSyncCapability = services.need("lipsync")

    def options(self) -> dict[str, Any]:
        return {"animators": list(ANIMATORS), "default": self.choose("auto")}

    def choose(self, animator: str) -> str:
        """``auto``: lip-sync (MuseTalk) where its models are on disk and a GPU renders it,
        else LivePortrait on the same terms, else the classic talking photo (also the CPU's,
        and the fallback)."""
        if animator == "auto":
            if self.lipsync.usable():
                return "lipsync"
            return "liveportrait" if self.liveportrait.usable() else "classic"
        return animator

    def locate(self, rgb: np.ndarray, name: str) -> FaceGeometry:
        """The face of a portrait, or ``InvalidInput`` (``error.no_face``) naming it."""
        return locate_face(self.faces, rgb, name)

    def animate(
        self,
        portrait: np.ndarray,
        samples: np.ndarray,
        rate: int,
        fps: int,
        name: str = "avatar",
        animator: str = "classic",
    ) -> tuple[Animator, DriveSignal, FaceGeometry]:
        """A prepared animator (lip-sync over a motion, LivePortrait, or the classic talking
        photo), its drive signal from the voice and the face: the face is found and the drive
        computed once, whichever animator runs."""
        face = locate_face(self.faces, portrait, name)
        drive = drive_from_audio(samples, rate, fps)
        chosen = self.choose(animator)
        strict = animator != "auto"  # asked for by name: the job says why it cannot
        if chosen == "lipsync":  # its mouth over the motion of the best animator here
            base = self.motion(portrait, face, self.liveportrait.usable() and "liveportrait")
            try:
                synced = self.lipsync.animator(base, samples, rate)
                synced.prepare(portrait, face)
                return synced, drive, face
            except EnfoadsError as exc:
                if strict:
                    raise
                log.warning("lip-sync unavailable (%s): %s renders", exc, base.name)
                return base, drive, face
        neural = (strict or "liveportrait") if chosen == "liveportrait" else False
        return self.motion(portrait, face, neural), drive, face

    def motion(self, portrait: np.ndarray, face: FaceGeometry, neural: Any) -> Animator:
        """LivePortrait prepared (``neural``: ``True`` when asked for by name, its failure the
        job's; ``"liveportrait"``: when it loads), else the classic talking photo."""
        if neural:
            animator = self.liveportrait.animator()
            try:
                animator.prepare(portrait, face)
                return animator
            except EnfoadsError as exc:
                if neural is True:
                    raise
                # chosen by "auto": its files are there but do not load; the video still renders
                log.warning("LivePortrait unavailable (%s): the classic animator renders", exc)
        classic = TalkingPhotoAnimator()
        classic.prepare(portrait, face)
        return classic
