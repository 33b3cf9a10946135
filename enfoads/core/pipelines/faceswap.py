"""Face swap on images and videos with InsightFace (``buffalo_l`` + ``inswapper_128``).

Detection, recognition and 106-point landmarks come from InsightFace's ``FaceAnalysis`` over the
``buffalo_l`` pack; the swap from ``inswapper_128.onnx``. Both are for **non-commercial research
use only** (InsightFace's licence): the model table, the API's metadata and the UI say so.

InsightFace's own paste-back is replaced by ours: the feathered mask and the colour match are
computed on the crop's bounding box only, which is most of the per-frame cost on 1080p video
(see ``benchmarks/faceswap.py``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, field_validator

from enfoads.core import media
from enfoads.core.assets import INPUT_TAG, new_asset_id
from enfoads.core.capability import Capability, JobSpec, ModelSpec, Services
from enfoads.core.errors import EnfoadsError, InvalidInput, ModelNotDownloaded, ModelUnavailable
from enfoads.core.i18n import Reason, t
from enfoads.core.jobs import JobContext, JobResult
from enfoads.core.pipelines import compose
from enfoads.core.pipelines.base import (
    ModelFile,
    ai_png_text,
    ai_video_tags,
    hub_cache,
    hub_offline,
    in_cache,
    is_local,
    resolve_file,
    use_model,
)
from enfoads.core.provenance import COMPOSITE, Claim
from enfoads.core.validation import RequestModel, check_text

if TYPE_CHECKING:
    from PIL import Image

    from enfoads.core.settings import Settings


log = logging.getLogger(__name__)

MODEL_NAME = "faceswap"
IMAGE_JOB = "face_swap"
VIDEO_JOB = "face_swap_video"
LICENCE = "InsightFace: non-commercial research use only"


class LicenceNotAccepted(EnfoadsError):
    """A swap asked for before the licence notice was accepted."""

    status = 403


LICENCE_NOTICE = {
    "es": "Los modelos de InsightFace (buffalo_l, inswapper_128) son solo para investigación "
    "no comercial. No uses estos resultados en anuncios comerciales sin una licencia. Las "
    "normas de Colab prohíben crear deepfakes en sus entornos: cambia solo caras de personas "
    "que lo hayan permitido, y nunca para engañar.",
    "en": "InsightFace's models (buffalo_l, inswapper_128) are for non-commercial research "
    "only. Don't use these results in commercial ads without a licence. Colab's rules forbid "
    "creating deepfakes on its runtimes: swap only the faces of people who agreed to it, and "
    "never to deceive.",
}
MODEL_TABLE: dict[str, ModelFile] = {
    m.key: m
    for m in (
        ModelFile(
            "buffalo_l",
            "insightface:buffalo_l",
            None,
            "v0.7",
            LICENCE,
            288_621_354,
            commercial_use=False,
            note="detection (SCRFD 10G), recognition (ArcFace R50), 2d106 landmarks; "
            "downloaded by InsightFace from its release",
        ),
        ModelFile(
            "inswapper_128",
            "ezioruan/inswapper_128.onnx",
            "inswapper_128.onnx",
            "main",
            LICENCE,
            554_253_681,
            commercial_use=False,
            note="the swap model; sha256 recorded on first download, then checked",
        ),
    )
}
MODULES = ["detection", "recognition", "landmark_2d_106"]
DET_SIZE = (640, 640)


# -- models ----------------------------------------------------------------------------
def providers_for(device: str) -> list[str]:
    import onnxruntime as ort

    wanted = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if device == "cuda"
        else ["CPUExecutionProvider"]
    )
    available = set(ort.get_available_providers())
    return [p for p in wanted if p in available]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """``expected`` when given; else the hash recorded beside the file at its first use (a file
    changed on Drive since is refused)."""
    record = path.with_name(path.name + ".sha256")
    actual = sha256_file(path)
    wanted = expected.strip().lower() or (record.read_text().strip() if record.is_file() else "")
    if wanted and actual != wanted:
        raise ModelUnavailable(path.name, f"sha256 mismatch: expected {wanted}, got {actual}")
    if not record.is_file():
        try:
            record.write_text(actual + "\n")
        except OSError:  # a read-only cache (the hub's blobs): nothing to record
            pass


def analysis_dir(settings: Settings) -> Path:
    """The ``buffalo_l`` folder: a local folder, or InsightFace's download into the data dir."""
    name = settings.faceswap_analysis_model
    if is_local(name):
        return Path(name).expanduser()
    root = settings.models_dir / "insightface"
    folder = root / "models" / name
    if any(folder.glob("*.onnx")):
        return folder
    if hub_offline():
        raise ModelNotDownloaded(name)
    from insightface.utils import ensure_available

    try:
        return Path(ensure_available("models", name, root=str(root)))
    except Exception as exc:  # urllib, zip and http errors alike
        raise ModelUnavailable(name, f"download failed: {type(exc).__name__}: {exc}") from exc


def swapper_file(settings: Settings) -> Path:
    spec = settings.faceswap_swapper_model
    local = Path(spec).expanduser()
    if local.is_file():
        path = local
    else:
        path = resolve_file(spec, "inswapper_128.onnx", "main", hub_cache(settings.models_dir))
    check_sha256(path, settings.faceswap_swapper_sha256)
    return path


@dataclass
class FaceModels:
    """InsightFace's analysis models and the swapper, on one device (rebuilt to move)."""

    analysis_path: Path
    swapper_path: Path
    device: str = "cpu"
    analysis: Any = None
    swapper: Any = None

    def build(self, device: str) -> FaceModels:
        from insightface.app import FaceAnalysis
        from insightface.model_zoo import get_model

        providers = providers_for(device)
        try:
            self.analysis = FaceAnalysis(
                name=str(self.analysis_path), providers=providers, allowed_modules=MODULES
            )
        except AssertionError as exc:  # InsightFace asserts when no detector is in the folder
            raise ModelUnavailable("buffalo_l", f"no detector in {self.analysis_path}") from exc
        self.analysis.prepare(ctx_id=0 if device == "cuda" else -1, det_size=DET_SIZE)
        self.swapper = get_model(str(self.swapper_path), providers=providers)
        if self.swapper is None or not hasattr(self.swapper, "emap"):
            raise ModelUnavailable("inswapper_128", f"{self.swapper_path.name} is not a swapper")
        self.device = device
        if device == "cuda" and "CUDAExecutionProvider" not in self.providers_in_use():
            log.warning(
                "face swap asked for CUDA but ONNX Runtime runs on %s: install "
                "onnxruntime-gpu (and only it) for GPU speed",
                self.providers_in_use(),
            )
        return self

    def sessions(self) -> list[Any]:
        models = list(self.analysis.models.values()) if self.analysis else []
        return [m.session for m in [*models, self.swapper] if m is not None]

    def providers_in_use(self) -> list[str]:
        return sorted({p for s in self.sessions() for p in s.get_providers()})

    def size_bytes(self) -> int:
        files = [*self.analysis_path.glob("*.onnx"), self.swapper_path]
        return sum(p.stat().st_size for p in files if p.is_file())


class FaceModelsAdapter:
    """VRAM-manager adapter: moving means new ONNX Runtime sessions on the other provider."""

    def to_device(self, model: FaceModels, device: str) -> FaceModels:
        return model if model.device == device else model.build(device)

    def measure(self, model: FaceModels) -> int | None:
        return model.size_bytes()

    def release(self, model: FaceModels) -> None:
        model.analysis = model.swapper = None


# -- geometry --------------------------------------------------------------------------
@dataclass(frozen=True)
class FoundFace:
    index: int  # left to right
    box: tuple[float, float, float, float]
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 3),
        }


def sorted_faces(faces: list[Any]) -> list[Any]:
    """Faces counted left to right (by the box's left edge)."""
    return sorted(faces, key=lambda f: float(f.bbox[0]))


def describe(faces: list[Any]) -> list[FoundFace]:
    return [
        FoundFace(i, tuple(float(v) for v in f.bbox), float(f.det_score))
        for i, f in enumerate(faces)
    ]


def check_choice(choice: Any, field_name: str, allow_all: bool) -> str | int:
    """A face choice's shape, checked before a job is queued (the count is known only later):
    ``largest``, ``all`` where allowed, or a face number from 0."""
    if isinstance(choice, str):
        check_text(choice, field_name)  # a bad character is named, never echoed back
    if isinstance(choice, str) and choice.strip().isdigit():
        choice = int(choice)
    if choice == "largest" or (choice == "all" and allow_all):
        return choice
    if isinstance(choice, int) and not isinstance(choice, bool) and 0 <= choice < 1000:
        return choice
    choices = "largest, 0, 1, …" + (", all" if allow_all else "")
    raise InvalidInput(
        "error.unknown_choice", field=field_name, value=str(choice)[:40], choices=choices
    )


def choose(faces: list[Any], choice: str | int, field_name: str, allow_all: bool) -> list[int]:
    """Indices (into left-to-right ``faces``) picked by ``largest``, an index, or ``all``."""
    if isinstance(choice, str) and choice.strip().lstrip("-").isdigit():
        choice = int(choice)
    if choice == "largest":
        areas = [(f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]) for f in faces]
        return [int(np.argmax(areas))]
    if choice == "all" and allow_all:
        return list(range(len(faces)))
    if isinstance(choice, int) and not isinstance(choice, bool):
        if not 0 <= choice < len(faces):
            raise InvalidInput(
                "error.face_index",
                field=field_name,
                index=choice,
                count=len(faces),
                last=len(faces) - 1,
            )
        return [choice]
    choices = "largest, 0, 1, …" + (", all" if allow_all else "")
    raise InvalidInput("error.unknown_choice", field=field_name, value=choice, choices=choices)


def paste_back(
    target: np.ndarray,
    fake: np.ndarray,
    crop: np.ndarray,
    matrix: np.ndarray,
    feather: float = 0.08,
) -> np.ndarray:
    """Blend the swapped ``fake`` crop into ``target`` (both BGR uint8) in place and return it.

    The mask is the crop's square shrunk by ``feather`` and blurred, so the seam fades over a
    band; before blending, the fake's mean LAB colour is moved to the target crop's (skin tone and
    light at the seam match). Work is done on the crop's bounding box only.
    """
    import cv2

    size = fake.shape[0]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    mapped = corners @ inverse.T
    height, width = target.shape[:2]
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int).clip(0)
    x1 = int(min(width, np.ceil(mapped[:, 0].max()) + 1))
    y1 = int(min(height, np.ceil(mapped[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return target
    margin = max(2, int(size * feather))
    mask = np.zeros((size, size), np.float32)
    mask[margin:-margin, margin:-margin] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=margin / 2)
    inner = mask > 0.5
    fake_lab = cv2.cvtColor(fake, cv2.COLOR_BGR2LAB).astype(np.float32)
    crop_lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB).astype(np.float32)
    fake_lab += crop_lab[inner].mean(axis=0) - fake_lab[inner].mean(axis=0)
    fake = cv2.cvtColor(fake_lab.clip(0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    box = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(
        fake, local, box, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    alpha = cv2.warpAffine(mask, local, box, flags=cv2.INTER_LINEAR, borderValue=0.0)[..., None]
    region = target[y0:y1, x0:x1].astype(np.float32)
    target[y0:y1, x0:x1] = (alpha * warped + (1 - alpha) * region).round().astype(np.uint8)
    return target


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def iou(a: Any, b: Any) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# -- images ----------------------------------------------------------------------------
def to_bgr(image: Image.Image) -> tuple[np.ndarray, Any]:
    """BGR pixels and what is needed to give the result the target's mode back (alpha, L)."""
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1]), (image.mode, alpha)


def from_bgr(pixels: np.ndarray, mode_alpha: Any) -> Image.Image:
    from PIL import Image

    mode, alpha = mode_alpha
    out = Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1]), "RGB")
    if mode in ("L", "LA"):
        out = out.convert("L")
    if alpha is not None:
        out.putalpha(alpha)
    return out


@dataclass(frozen=True)
class ImageInput:
    """An image to swap from or into: an asset id, or uploaded bytes with a name."""

    asset_id: str | None = None
    data: bytes | None = None
    name: str = "upload"


class _FaceChoices(RequestModel):
    """``source_face`` and ``target_face``: ``largest``, a face number from 0, or (target
    only) ``all``; how many faces there are is known only when the job runs."""

    source_face: str | int = "largest"
    target_face: str | int = "largest"

    @field_validator("source_face", "target_face", mode="before")
    @classmethod
    def _face_choice(cls, value: object, info: Any) -> str | int:
        return check_choice(value, info.field_name, allow_all=info.field_name == "target_face")


class FaceSwapJobRequest(_FaceChoices):
    """The ``face_swap`` job: two images of the vault."""

    source_asset_id: str
    target_asset_id: str


class FaceSwapVideoRequest(_FaceChoices):
    """The ``face_swap_video`` job: the source's face on every frame of a video, audio kept."""

    source_asset_id: str
    video_asset_id: str
    target_face: str | int = "all"
    ai_label: bool = Field(
        True, description="a visible 'Contenido generado con IA' mark at the top left"
    )


class FaceSwapRequest(_FaceChoices):
    """``POST /face-swap``: source and target as asset ids or base64 images (the React client
    sends base64). A ``video_asset_id`` target swaps every frame of that video (always a
    job); ``run_as_job`` queues an image swap."""

    source_asset_id: str | None = None
    source_image: str | None = None
    target_asset_id: str | None = None
    target_image: str | None = None
    video_asset_id: str | None = None
    run_as_job: bool = False
    inline: bool = True  # also return the result as base64 (the seed's client shows it)


class DetectRequest(RequestModel):
    asset_id: str | None = None
    image: str | None = None


class FaceSwapPipeline(Capability):
    """InsightFace: face detection, landmarks and the swap, for images and videos."""

    name = "faceswap"

    def __init__(self, services: Services):
        super().__init__(services)
        self.notices: list[str] = []

    # -- the contract ----------------------------------------------------------------------
    def models(self) -> list[ModelSpec]:
        s = self.settings
        return [
            ModelSpec(
                MODEL_NAME,
                self.name,
                f"{s.faceswap_analysis_model} + inswapper_128",
                LICENCE,
                self.estimate_bytes(),
                self.on_disk,
                commercial_use=False,
                load=self.load,
                memory_bytes=self.estimate_bytes,
                adapter=FaceModelsAdapter(),
            )
        ]

    def jobs(self) -> list[JobSpec]:
        return [
            JobSpec(
                IMAGE_JOB,
                FaceSwapJobRequest,
                self.run_image,
                check=self.check_image,
                queue="faces",
                timeout_s=300.0,
            ),
            JobSpec(
                VIDEO_JOB,
                FaceSwapVideoRequest,
                self.run_video,
                check=self.check_video,
                queue="faces",
            ),
        ]

    def options(self) -> dict[str, Any]:
        return {"licence": self.licence(), "max_video_s": self.settings.max_swap_video_s}

    def on_disk(self) -> bool:
        swapper = self.settings.faceswap_swapper_model
        return self.analysis_on_disk() and (
            Path(swapper).expanduser().is_file()
            or in_cache(swapper, "inswapper_128.onnx", self.settings.models_dir)
        )

    def require_licence(self) -> None:
        """Every door to a swap (panel, HTTP, job, attached page, worker) passes here: no swap
        until the shop has said it read InsightFace's non-commercial licence and Colab's rule
        on deepfakes (``faceswap_licence_accepted``, set in the panel or ``PATCH
        /api/settings``)."""
        if not self.settings.faceswap_licence_accepted:
            raise LicenceNotAccepted(
                "error.licence_not_accepted", notice=LICENCE_NOTICE[self.settings.language]
            )

    def check_image(self, request: FaceSwapJobRequest) -> FaceSwapJobRequest:
        self.require_licence()
        self.services.assets.open_image(request.source_asset_id)
        self.services.assets.open_image(request.target_asset_id)
        return request

    def check_video(self, request: FaceSwapVideoRequest) -> FaceSwapVideoRequest:
        self.require_licence()
        self.services.assets.open_image(request.source_asset_id)
        video = self.services.assets.get(request.video_asset_id)
        if video.ext not in media.VIDEO_EXTS:
            raise InvalidInput(
                "error.invalid",
                field="video_asset_id",
                reason=Reason("reason.not_video", id=request.video_asset_id),
            )
        limit = self.settings.max_swap_video_s
        if (video.duration_s or 0) > limit:
            raise InvalidInput(
                "error.video_too_long",
                field="video_asset_id",
                name=video.name or video.id,
                seconds=round(video.duration_s, 1),
                limit=limit,
            )
        return request

    def landmarks(self, rgb: np.ndarray) -> Any | None:
        """The largest face with InsightFace's 106 landmarks, when its models are already on
        disk (never a download for this); None otherwise. The avatar's face geometry."""
        if not self.analysis_on_disk():
            return None
        with self.services.models.use(MODEL_NAME) as models:
            faces = models.analysis.get(np.ascontiguousarray(rgb[:, :, ::-1]))
        if not faces:
            return None
        face = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        return face if getattr(face, "landmark_2d_106", None) is not None else None

    def load(self) -> FaceModels:
        models = FaceModels(analysis_dir(self.settings), swapper_file(self.settings))
        return models.build("cpu")

    def analysis_on_disk(self) -> bool:
        """Whether ``buffalo_l`` is already here (the avatar then uses its landmarks)."""
        name = self.settings.faceswap_analysis_model
        folder = (
            Path(name).expanduser()
            if is_local(name)
            else self.settings.models_dir / "insightface" / "models" / name
        )
        return any(folder.glob("*.onnx"))

    def estimate_bytes(self) -> int:
        return sum(m.size_bytes for m in MODEL_TABLE.values())

    def licence(self, lang: str | None = None) -> dict[str, Any]:
        lang = lang or self.settings.language
        return {
            "licence": LICENCE,
            "commercial_use": False,
            "notice": LICENCE_NOTICE[lang],
            "accepted": self.settings.faceswap_licence_accepted,
            "models": [MODEL_TABLE["buffalo_l"].to_dict(), MODEL_TABLE["inswapper_128"].to_dict()],
        }

    def open_input(self, item: ImageInput, field_name: str) -> Image.Image:
        if item.asset_id:
            try:
                return self.services.assets.open_image(item.asset_id)
            except InvalidInput as exc:
                raise InvalidInput(
                    "error.invalid", field=field_name, reason=exc.message("en")
                ) from exc
        if not item.data:
            raise InvalidInput("error.empty", field=field_name)
        media.check_upload_size(item.data, item.name, self.settings.max_upload_bytes)
        return media.decode_image(item.data, item.name, self.settings.max_image_pixels)

    def analyse(self, models: FaceModels, pixels: np.ndarray) -> list[Any]:
        return sorted_faces(models.analysis.get(pixels))

    def detect_only(self, models: FaceModels, pixels: np.ndarray) -> list[Any]:
        """Boxes and the 5 keypoints, nothing else: all the swapper needs on a video frame.

        ``FaceAnalysis.get`` also runs recognition, both landmark models and gender/age on
        every face, work a video frame does not use (the source embedding is computed once).
        """
        from insightface.app.common import Face

        bboxes, kpss = models.analysis.det_model.detect(pixels, max_num=0, metric="default")
        return sorted_faces(
            [
                Face(bbox=b[:4], kps=None if kpss is None else kpss[i], det_score=b[4])
                for i, b in enumerate(bboxes)
            ]
        )

    def faces_in(
        self, image_bgr: np.ndarray, models: FaceModels, role: str, name: str
    ) -> list[Any]:
        faces = self.analyse(models, image_bgr)
        if not faces:
            raise InvalidInput("error.no_face", field=role, name=name)
        return faces

    def first_frame(self, asset_id: str) -> Image.Image:
        """A video asset's first frame (where the UI numbers the faces of a video target)."""
        return media.first_frame(self.services.assets.file_path(asset_id), asset_id)

    def detect(self, item: ImageInput) -> dict[str, Any]:
        """The faces in an image (or a video's first frame), left to right, for numbered boxes."""
        is_video = (
            bool(item.asset_id) and self.services.assets.get(item.asset_id).ext in media.VIDEO_EXTS
        )
        image = self.first_frame(item.asset_id) if is_video else self.open_input(item, "image")
        pixels, _ = to_bgr(image)
        with self.services.models.use(MODEL_NAME) as models:
            faces = self.analyse(models, pixels)
        return {
            "faces": [f.to_dict() for f in describe(faces)],
            "width": image.width,
            "height": image.height,
        }

    def swap_pixels(
        self, models: FaceModels, target: np.ndarray, source_face: Any, target_faces: list[Any]
    ) -> np.ndarray:
        import cv2

        out = target.copy()
        for face in target_faces:
            fake, matrix = models.swapper.get(out, face, source_face, paste_back=False)
            size = fake.shape[0]
            crop = cv2.warpAffine(out, matrix, (size, size), borderValue=0.0)
            paste_back(out, fake, crop, matrix)
        return out

    def swap_image(
        self,
        source: ImageInput,
        target: ImageInput,
        *,
        source_face: str | int = "largest",
        target_face: str | int = "largest",
        ctx: JobContext | None = None,
    ) -> dict[str, Any]:
        """Swap and store: the result (and uploaded inputs) become assets only on success.

        Called directly (about a second on a T4) or from the ``face_swap`` job (``ctx``), where
        a first use shows its download in the job's stage."""
        if ctx is None:  # a job was checked when it was queued (a worker's settings may lag)
            self.require_licence()
        job_id = ctx.job_id if ctx is not None else None
        src_image = self.open_input(source, "source")
        dst_image = self.open_input(target, "target")
        src_pixels, _ = to_bgr(src_image)
        dst_pixels, mode_alpha = to_bgr(dst_image)
        src_name = source.asset_id or source.name
        dst_name = target.asset_id or target.name
        loading = (
            use_model(self.services, ctx, MODEL_NAME, "InsightFace", self.estimate_bytes())
            if ctx is not None
            else self.services.models.use(MODEL_NAME)
        )
        with loading as models:
            src_faces = self.faces_in(src_pixels, models, "source", src_name)
            dst_faces = self.faces_in(dst_pixels, models, "target", dst_name)
            [src_index] = choose(src_faces, source_face, "source_face", allow_all=False)
            dst_indices = choose(dst_faces, target_face, "target_face", allow_all=True)
            chosen = src_faces[src_index]
            result = self.swap_pixels(
                models, dst_pixels, chosen, [dst_faces[i] for i in dst_indices]
            )
            after = self.analyse(models, result)
            providers = models.providers_in_use()
        similarity = self.similarity(chosen, dst_faces, dst_indices, after)
        parents = [
            self.stored_input(source, src_image, job_id),
            self.stored_input(target, dst_image, job_id),
        ]
        asset = self._store_swap(
            from_bgr(result, mode_alpha), source, target, parents, src_index, dst_indices, job_id
        )
        return {
            "asset": asset.to_dict(),
            "asset_id": asset.id,
            "url": asset.url,
            "faces": {
                "source": [f.to_dict() for f in describe(src_faces)],
                "target": [f.to_dict() for f in describe(dst_faces)],
            },
            "source_face": src_index,
            "target_faces": dst_indices,
            "similarity": similarity,
            "providers": providers,
            "licence": self.licence(),
        }

    @staticmethod
    def similarity(
        chosen: Any, dst_faces: list[Any], dst_indices: list[int], after: list[Any]
    ) -> list[dict[str, Any]]:
        """How like the source each swapped face is, before and after (cosine of embeddings;
        after: the face found again where the target face was, if any)."""
        out = []
        for i in dst_indices:
            box = dst_faces[i].bbox
            match = max(after, key=lambda f: iou(f.bbox, box), default=None)
            value = (
                cosine(chosen.normed_embedding, match.embedding)
                if match is not None and iou(match.bbox, box) > 0.3
                else None
            )
            before = cosine(chosen.normed_embedding, dst_faces[i].embedding)
            out.append(
                {
                    "index": i,
                    "before": round(before, 4),
                    "after": None if value is None else round(value, 4),
                }
            )
        return out

    def _store_swap(
        self,
        image: Any,
        source: ImageInput,
        target: ImageInput,
        parents: list[str],
        src_index: int,
        dst_indices: list[int],
        job_id: str | None,
    ) -> Any:
        """The swapped image as an asset, labelled AI-modified with the licence in its PNG."""
        asset_id = new_asset_id("image")
        record = {
            "asset_id": asset_id,
            "source_asset_id": parents[0],
            "target_asset_id": parents[1],
            "source_face": src_index,
            "target_faces": dst_indices,
            "model": "InsightFace inswapper_128 + buffalo_l",
            "licence": LICENCE,
        }
        return self.services.assets.add_image(
            image,
            "image",
            asset_id=asset_id,
            name=t(
                "asset.face_swap",
                self.settings.language,
                source=self.label(source),
                target=self.label(target),
            )[:120],
            job_id=job_id,
            parents=parents,
            model_ids=["insightface/buffalo_l", "insightface/inswapper_128"],
            png_text=ai_png_text(
                "AI-modified image (face swap with InsightFace inswapper_128)",
                record,
                source_type="compositeWithTrainedAlgorithmicMedia",  # a real photo, edited
            ),
            meta={**record, "ai_generated": True, "commercial_use": False},
            claim=Claim(COMPOSITE, "face swap (InsightFace inswapper_128)", edits=parents[1]),
        )

    def label(self, item: ImageInput) -> str:
        """The name a person gave the input (the asset's name, else the upload's)."""
        if item.asset_id:
            asset = self.services.assets.get(item.asset_id)
            return asset.name or asset.id
        return item.name

    def stored_input(self, item: ImageInput, image: Image.Image, job_id: str | None) -> str:
        if item.asset_id:
            return item.asset_id
        asset = self.services.assets.add_upload(
            item.data, item.name, "image", job_id=job_id, tags=(INPUT_TAG,)
        )
        return asset.id

    # -- jobs ---------------------------------------------------------------------------
    def run_image(self, ctx: JobContext, request: FaceSwapJobRequest) -> JobResult:
        ctx.progress(10, ctx.t("stage.loading_model"))
        out = self.swap_image(
            ImageInput(asset_id=request.source_asset_id),
            ImageInput(asset_id=request.target_asset_id),
            source_face=request.source_face,
            target_face=request.target_face,
            ctx=ctx,
        )
        out.pop("asset")
        return JobResult((out["asset_id"],), out)

    def run_video(self, ctx: JobContext, request: FaceSwapVideoRequest) -> JobResult:
        video = self.services.assets.get(request.video_asset_id)
        if video.ext not in media.VIDEO_EXTS:
            raise InvalidInput(
                "error.invalid",
                field="video_asset_id",
                reason=Reason("reason.not_video", id=video.id),
            )
        source = ImageInput(asset_id=request.source_asset_id)
        src_pixels, _ = to_bgr(self.open_input(source, "source"))
        ctx.progress(2, ctx.t("stage.loading_model"))
        asset_id = new_asset_id("video")
        with media.work_dir(self.settings.work_dir, "swap-") as tmp:
            out_path = Path(tmp) / "swapped.mp4"
            with use_model(
                self.services, ctx, MODEL_NAME, "InsightFace", self.estimate_bytes()
            ) as models:
                src_faces = self.faces_in(src_pixels, models, "source", source.asset_id or "")
                [src_index] = choose(src_faces, request.source_face, "source_face", allow_all=False)
                frames, swapped = self._swap_frames(
                    ctx, models, src_faces[src_index], request, video, out_path, asset_id
                )
            ctx.check_cancelled()
            ctx.progress(97, ctx.t("stage.saving"))
            asset = self.services.assets.add_bytes(
                out_path.read_bytes(),
                "video",
                ext="mp4",
                asset_id=asset_id,
                name=ctx.t(
                    "asset.face_swap",
                    source=self.label(source),
                    target=video.name or video.id,
                )[:120],
                job_id=ctx.job_id,
                parents=[source.asset_id, video.id],
                model_ids=["insightface/buffalo_l", "insightface/inswapper_128"],
                meta={
                    "ai_generated": True,
                    "commercial_use": False,
                    "licence": LICENCE,
                    "frames": frames,
                    "frames_swapped": swapped,
                },
                claim=Claim(COMPOSITE, "face swap on every frame", edits=video.id),
            )
        return JobResult(
            (asset.id,),
            {
                "asset_id": asset.id,
                "url": asset.url,
                "frames": frames,
                "frames_swapped": swapped,
                "licence": self.licence(ctx.lang),
            },
        )

    def _swap_frames(
        self,
        ctx: JobContext,
        models: Any,
        chosen: Any,
        request: FaceSwapVideoRequest,
        video: Any,
        out_path: Path,
        asset_id: str,
    ) -> tuple[int, int]:
        """Every frame of ``video`` with ``chosen``'s face on the target faces, its audio kept,
        into ``out_path`` (tagged AI-modified, with the licence): (frames, frames swapped).
        ONNX Runtime, OpenCV and numpy release the GIL, so frames are swapped on threads (the
        models' batch is 1) and written in order while ffmpeg encodes."""
        path = self.services.assets.file_path(video)
        info = media.probe_video(path)
        total = max(1, round(info.duration_s * info.fps))

        def swap_frame(frame: np.ndarray) -> tuple[np.ndarray, bool]:
            bgr = np.ascontiguousarray(frame[:, :, ::-1])
            faces = self.detect_only(models, bgr)
            try:
                picked = choose(faces, request.target_face, "target_face", True) if faces else []
            except InvalidInput:
                picked = []  # this frame has fewer faces than the index asks
            if not picked:
                return frame, False
            out = self.swap_pixels(models, bgr, chosen, [faces[i] for i in picked])
            return out[:, :, ::-1], True

        tags = ai_video_tags(
            f"AI face swap of {video.name}"[:200],
            {
                "models": ["insightface/buffalo_l", "insightface/inswapper_128"],
                "job_id": ctx.job_id,
                "asset_id": asset_id,
            },
            licence=LICENCE,
        )
        label = None
        if request.ai_label:
            margin = (int(info.width * 0.04), int(info.height * 0.04))
            safe = (*margin, info.width - margin[0], info.height - margin[1])
            label = compose.ai_label((info.width, info.height), safe, ctx.lang)
        swapped, n = 0, -1
        with media.FrameWriter(
            out_path, info.width, info.height, info.fps, audio=path, metadata=tags
        ) as writer:
            results = media.ordered_map(swap_frame, media.read_frames(path), media.frame_workers(4))
            for n, (frame, did) in enumerate(results):
                if n % 5 == 0:
                    ctx.check_cancelled()
                    ctx.progress(
                        5 + 90 * n / total, ctx.t("stage.swapping_frame", frame=n + 1, total=total)
                    )
                swapped += did
                if label is not None:
                    frame = np.array(frame)  # a decoded frame may be read-only
                    label.blend(frame)
                writer.write(frame)
        return n + 1, swapped
