"""What every studio surface offers, and what both studios write once.

``StudioAPI`` is the facade the panels, the CLI and the routes program against: the engine's
``Studio`` and a page's ``AttachedStudio`` (``enfoads.attached``) both implement it, and
``tests/test_capabilities.py`` checks that neither lacks a member of the other. ``Facade`` holds
what is the same in both: each job kind's convenience method, written once over
``submit(kind, request)``, and the reads of the shared asset files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from enfoads.core.assets import Asset, AssetStore, Page
from enfoads.core.events import Event
from enfoads.core.jobs import Job
from enfoads.core.settings import Settings


@runtime_checkable
class StudioAPI(Protocol):
    """The studio as every surface sees it (in-process engine or attached page)."""

    settings: Settings
    is_engine: bool

    # lifecycle and events
    def start(self) -> Any: ...
    def close(self) -> None: ...
    def subscribe(self, handler: Callable[[Event], None], name: str | None = None) -> Any: ...

    # settings, status, capabilities
    @property
    def language(self) -> str: ...
    def update_settings(self, **changes: Any) -> Settings: ...
    def health(self) -> dict[str, Any]: ...
    def gpu_status(self) -> dict[str, Any]: ...
    def options(self, name: str) -> dict[str, Any]: ...
    def describe_capabilities(self) -> dict[str, Any]: ...
    def model_inventory(self) -> list[dict[str, Any]]: ...
    def missing_models(self) -> list[dict[str, Any]]: ...
    def brand_kit(self) -> dict[str, Any]: ...
    def save_brand_kit(self, **kit: Any) -> dict[str, Any]: ...

    # assets
    def list_assets(self, **filters: Any) -> Page: ...
    def get_asset(self, asset_id: str) -> Asset: ...
    def upload_asset(
        self, data: bytes, name: str, kind: str | None = None, tags: tuple[str, ...] = ()
    ) -> Asset: ...
    def tag_asset(
        self, asset_id: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()
    ) -> Asset: ...
    def delete_asset(self, asset_id: str, confirm: bool = False) -> None: ...
    def import_seed_json(self, data: bytes, lang: str | None = None) -> dict[str, Any]: ...
    def reindex_assets(self, lang: str | None = None) -> dict[str, Any]: ...
    def asset_bytes(self, asset: Asset | str) -> bytes: ...
    def asset_path(self, asset: Asset | str) -> Path: ...
    def thumbnail_path(self, asset: Asset | str) -> Path | None: ...
    def asset_parts(self, asset_id: str) -> list[Asset]: ...
    def asset_provenance(self, asset_id: str, lang: str | None = None) -> dict[str, Any]: ...
    def first_frame(self, asset_id: str) -> Any: ...
    def use_as_avatar(self, asset_id: str) -> Asset: ...
    def list_avatars(self, **filters: Any) -> Page: ...

    # jobs: any kind through submit, and one method per kind (``Facade``)
    def submit(self, kind: str, params: Any) -> Job: ...
    def get_job(self, job_id: str) -> Job: ...
    def list_jobs(self, **filters: Any) -> list[Job]: ...
    def cancel_job(self, job_id: str) -> Job: ...
    def retry_job(self, job_id: str) -> Job: ...
    def wait_job(self, job_id: str, timeout: float | None = None) -> Job: ...
    def prepare_model(self, key: str) -> Job: ...
    def generate_images(self, request: Any = None, /, **params: Any) -> Job: ...
    def swap_faces(self, request: Any = None, /, **params: Any) -> Job: ...
    def swap_faces_video(self, request: Any = None, /, **params: Any) -> Job: ...
    def render_video(self, request: Any = None, /, **params: Any) -> Job: ...
    def render_multi_scene(self, request: Any = None, /, **params: Any) -> Job: ...
    def export_campaign(self, request: Any = None, /, **params: Any) -> Job: ...

    # direct calls (milliseconds to a second)
    def enhance_prompt(self, prompt: str, **options: Any) -> Any: ...
    def image_options(self) -> dict[str, Any]: ...
    def detect_faces(self, image: Any) -> dict[str, Any]: ...
    def swap_face_now(self, source: Any, target: Any, **options: Any) -> dict[str, Any]: ...
    def faceswap_licence(self, lang: str | None = None) -> dict[str, Any]: ...
    def voices(self) -> list[dict[str, Any]]: ...
    def speak(self, text: str, voice: str | None = None, **options: Any) -> dict[str, Any]: ...


class Facade:
    """What ``Studio`` and ``AttachedStudio`` share: they differ in ``submit`` (queue here, or
    ask the engine) and in what changes the studio; the rest is written here once."""

    assets: AssetStore  # both read the shared database and files directly

    def submit(self, kind: str, params: Any) -> Job:
        raise NotImplementedError

    # -- one method per job kind, over submit ----------------------------------------------
    def generate_images(self, request: Any = None, /, **params: Any) -> Job:
        """Queue an image job (``GenerateImageRequest`` or its fields: prompt, placements,
        style, seed, num_images…). Bad input raises here, before anything is queued."""
        return self.submit("generate_image", request if request is not None else params)

    def swap_faces(self, request: Any = None, /, **params: Any) -> Job:
        """Image face swap as a queued job (``FaceSwapJobRequest`` or its fields:
        source_asset_id, target_asset_id, source_face, target_face)."""
        return self.submit("face_swap", request if request is not None else params)

    def swap_faces_video(self, request: Any = None, /, **params: Any) -> Job:
        """Swap the source face onto every frame of a video asset, audio kept (a job:
        ``FaceSwapVideoRequest`` or its fields)."""
        return self.submit("face_swap_video", request if request is not None else params)

    def render_video(self, request: Any = None, /, **params: Any) -> Job:
        """Queue a talking-avatar ad (``RenderVideoRequest`` or its fields: script,
        avatar_asset_id, voice, rate, music_asset_id, logo_asset_id, subtitle_style, aspect,
        cta…). Bad input raises here, before queueing."""
        return self.submit("render_video", request if request is not None else params)

    def render_multi_scene(self, request: Any = None, /, **params: Any) -> Job:
        """Queue a multi-scene ad (``RenderMultiSceneRequest`` or its fields: ``scenes`` of
        kind, asset_id, script, duration, motion, transition, plus the single render's
        options)."""
        return self.submit("render_multi_scene", request if request is not None else params)

    def export_campaign(self, request: Any = None, /, **params: Any) -> Job:
        """Queue a publish-ready export (``ExportRequest`` or its fields: asset_ids,
        platforms): one ZIP per platform, every file checked against its placement."""
        return self.submit("export_campaign", request if request is not None else params)

    def prepare_model(self, key: str) -> Job:
        """Download one model (an inventory key) as a job, e.g. from the Settings panel. An
        unknown key is refused before anything is queued."""
        from enfoads.core.capability import PREPARE_JOB

        return self.submit(PREPARE_JOB, {"model": key})

    # -- the shared asset files --------------------------------------------------------
    def asset_bytes(self, asset: Asset | str) -> bytes:
        return self.assets.read_bytes(asset)

    def asset_path(self, asset: Asset | str) -> Path:
        return self.assets.file_path(asset)

    def thumbnail_path(self, asset: Asset | str) -> Path | None:
        return self.assets.thumbnail_path(asset)

    def asset_parts(self, asset_id: str) -> list[Asset]:
        """An asset's own files (a video's voice-over, SRT and VTT)."""
        return self.assets.parts_of([asset_id]).get(asset_id, [])

    def asset_provenance(self, asset_id: str, lang: str | None = None) -> dict[str, Any]:
        """What a platform reads of the asset's making: its C2PA manifest, validated (this
        data dir's signer trusted), with the IPTC digital source type and the ingredients."""
        return self.assets.provenance_of(asset_id).to_dict(lang or self.language)

    def first_frame(self, asset_id: str) -> Any:
        """A video asset's first frame, as a PIL image."""
        from enfoads.core import media

        return media.first_frame(self.assets.file_path(asset_id), asset_id)

    def list_avatars(self, **filters: Any) -> Page:
        return self.assets.list(tag="avatar", **filters)
