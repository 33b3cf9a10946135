"""One typed settings object, read once from ``ENFOADS_*`` variables and ``settings.json``.

Precedence, highest first: keyword arguments, ``ENFOADS_*`` environment variables, the
``settings.json`` file in the data dir, the defaults below. Nothing else in the package reads
the environment for its own configuration; the object is built once and passed down.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "ENFOADS_"
SETTINGS_FILE = "settings.json"
# Where Colab mounts Google Drive (google.colab.drive.mount("/content/drive")).
COLAB_DRIVE = Path("/content/drive/MyDrive")
GB = 1024**3


def default_data_dir() -> Path:
    """Google Drive when it is mounted in Colab (work survives the session), else ``~/.enfoads``."""
    if COLAB_DRIVE.is_dir():
        return COLAB_DRIVE / "EnfoadsStudio"
    return Path.home() / ".enfoads"


class _JsonFileSource(PydanticBaseSettingsSource):
    """Reads ``settings.json`` from the data dir chosen by the higher-priority sources."""

    def __init__(self, settings_cls: type[BaseSettings], data_dir: Path):
        super().__init__(settings_cls)
        self.path = data_dir / SETTINGS_FILE

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        from enfoads.core.errors import InvalidSetting

        path = str(self.path)
        try:
            values = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InvalidSetting("error.settings_file_json", path=path) from None
        if not isinstance(values, dict):
            raise InvalidSetting("error.settings_file_object", path=path)
        known = set(self.settings_cls.model_fields)
        unknown = sorted(set(values) - known)
        if unknown:
            names = ", ".join(unknown)
            raise InvalidSetting("error.settings_file_unknown", path=path, names=names)
        return values


class Settings(BaseSettings):
    """Every setting of the studio. Each field is documented in the README (a test checks)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    language: Literal["es", "en"] = "es"
    database_url: str | None = None
    # Where the live SQLite file sits. "auto": on this machine's local disk when the data dir
    # is on a network mount (Google Drive in Colab), copied into the data dir after each
    # finished job and on exit, restored from there on a new machine; "data_dir": always in
    # the data dir; "local": always on local disk (with the copy).
    db_location: Literal["auto", "data_dir", "local"] = "auto"
    device: Literal["auto", "cuda", "cpu"] = "auto"
    # What the models may take together on the GPU. Colab's T4 has about 14.5 GiB usable: the
    # rest of it is left for activations (measured per placement, batches split to fit) and
    # CUDA-graph pools.
    gpu_budget_gb: float = Field(12.0, gt=0)
    ram_budget_gb: float = Field(12.7, gt=0)
    workers: int = Field(1, ge=1, le=16)
    # A job's runner and the engine renew their leases every third of this; past it, a silent
    # one counts as gone (on the same machine a dead process counts at once).
    lease_s: float = Field(30.0, ge=1, le=3600)
    # Where jobs run: "local" (threads of the engine) or "celery" (GPU worker processes behind
    # Redis, `enfoads worker`); the database stays the record of every job either way.
    queue: Literal["local", "celery"] = "local"
    # Capabilities of your own, registered after the studio's: "package.module:Class" entries,
    # comma-separated (a plugin; the engine and every worker must be able to import them).
    extra_capabilities: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis redelivers a job whose worker went silent after this long; longer than the longest
    # job (a lease check keeps a live worker's job from running twice anyway).
    visibility_timeout_s: float = Field(7200.0, ge=1)
    # The most a job may run, in seconds (download time does not count): per kind in
    # job_timeouts_s (JSON), else job_timeout_s. A job past it ends failed and frees the GPU.
    job_timeout_s: float = Field(3600.0, gt=0)
    job_timeouts_s: dict[str, float] = {}
    max_upload_mb: float = Field(25.0, gt=0)
    max_image_pixels: int = Field(40_000_000, gt=0)
    max_prompt_chars: int = Field(1000, ge=10)
    thumbnail_px: int = Field(384, ge=32, le=2048)
    image_base_model: str = "stabilityai/stable-diffusion-xl-base-1.0"
    image_unet_model: str = "ByteDance/SDXL-Lightning"
    image_steps: Literal[2, 4, 8] = 4
    image_vae_model: str = "madebyollin/sdxl-vae-fp16-fix"
    image_max_batch: int = Field(4, ge=1, le=16)
    compile: Literal["auto", "on", "off"] = "auto"
    # Autotune the VAE decoder's convolutions when compiling (minutes more per shape, in the
    # background): auto = where the machine has 8 CPU cores or more (not a Colab VM's 2).
    compile_autotune: Literal["auto", "on", "off"] = "auto"
    # What compiles: regional = the blocks the UNet repeats (transformer and ResNet blocks,
    # samplers: a shape traces a few blocks, so shorter compiles, cold and warm); whole = the
    # UNet as one graph (7 % faster an image, about twice the compile); auto = whole where the
    # machine has 8 CPU cores or more (as the autotune), regional on fewer (a Colab VM's 2).
    compile_scope: Literal["auto", "regional", "whole"] = "auto"
    # A long-lived engine (notebook, dashboard, ``enfoads serve``, a GPU worker) whose earlier
    # sessions compiled placements loads the image model at start and readies them from the
    # compile cache while the queue is idle; auto = wherever the image model compiles.
    warm_start: Literal["auto", "off"] = "auto"
    # Spanish prompts are translated to English before the rules (SDXL reads English); empty: off.
    prompt_translation_model: str = "Helsinki-NLP/opus-mt-es-en"
    prompt_llm_model: str = ""
    faceswap_analysis_model: str = "buffalo_l"
    faceswap_swapper_model: str = "ezioruan/inswapper_128.onnx"
    faceswap_swapper_sha256: str = ""
    faceswap_licence_accepted: bool = False
    voice_default: str = "es_MX-claude-high"
    voice_repo: str = "rhasspy/piper-voices"
    # A Piper voice that cannot be had: false fails the job and says how to get it; true lets
    # espeak-ng's robotic voice speak instead (the result says so).
    voice_fallback_espeak: bool = False
    subtitle_model: str = "base"
    # The talking avatar's LivePortrait networks (safetensors: a hub repo or a local folder).
    liveportrait_model: str = "Kijai/LivePortrait_safetensors"
    # The avatar's lip-sync (MuseTalk 1.5): its UNet (musetalkV15/ of a hub repo or a local
    # folder), the SD VAE and whisper-tiny it reads with; the UNet file's SHA-256 (empty: the
    # hash seen at first use is recorded beside the file and checked after).
    lipsync_model: str = "TMElyralab/MuseTalk"
    lipsync_vae_model: str = "stabilityai/sd-vae-ft-mse"
    lipsync_audio_model: str = "openai/whisper-tiny"
    lipsync_unet_sha256: str = ""
    max_script_chars: int = Field(2000, ge=10)
    max_scenes: int = Field(12, ge=1, le=100)
    max_swap_video_s: float = Field(120.0, gt=0)  # longest video for a face swap (a free T4 hour)
    video_fps: Literal[25, 30] = 25
    server_host: str = "127.0.0.1"
    server_port: int = Field(5000, ge=0, le=65535)  # 0: a free port, chosen at start
    server_token: str = ""
    cors_origins: list[str] = [
        "http://localhost:5173",
        "http://127.0.0.1:5173",
        "http://localhost:3000",
    ]
    # The cloudflared binary for `--tunnel` (empty: on the PATH, else pycloudflared's download).
    cloudflared_path: str = ""
    # An ngrok account token: with it, the tunnel is ngrok's instead of Cloudflare's.
    ngrok_authtoken: str = ""
    # Where asset files live: "local" (the data dir's assets folder) or "s3" (an S3-compatible
    # bucket that every engine and worker shares; the assets folder is then this host's cache
    # of it, so workers on other hosts need no shared filesystem).
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""  # empty: AWS S3; MinIO, R2, GCS: their S3 endpoint
    s3_prefix: str = (
        "enfoads"  # one prefix per studio database (a sweep deletes what it does not use)
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""  # empty: boto3's own chain (AWS_* variables, instance roles)
    s3_secret_access_key: str = ""
    # Where browsers reach the bucket for presigned links, when not at s3_endpoint_url
    # (MinIO in compose: http://minio:9000 inside, http://localhost:9000 outside).
    s3_public_url: str = ""
    # A bucket asset's media link: true redirects to a presigned URL of the bucket (valid for
    # media_url_ttl_s; the bytes go from the bucket to the browser); false: the engine serves it.
    s3_presign: bool = True
    # The folder of the studio's C2PA signing identity (credentials.pem: its key and
    # certificate, made on first use). Empty: the data dir's "provenance" folder. A cluster
    # gives every engine and worker the same one (a mounted secret), so each file any host
    # signs is "trusted" everywhere.
    provenance_dir: str = ""
    # How long a signed media URL (an asset's file or thumbnail for <img src>) stays valid.
    media_url_ttl_s: float = Field(600.0, ge=10, le=7 * 86400)
    rate_limit_per_minute: int = Field(30, ge=1)
    # Proxies whose X-Forwarded-For is believed (comma-separated IPs); empty: none, so a
    # client cannot pick a fresh rate-limit bucket by sending the header itself.
    trusted_proxies: str = ""
    log_level: str = "INFO"

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(value).expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        data_dir = init_settings().get("data_dir") or env_settings().get("data_dir")
        data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        return init_settings, env_settings, _JsonFileSource(settings_cls, data_dir)

    # Derived paths: one place decides the data dir layout.
    @property
    def assets_dir(self) -> Path:
        return self.data_dir / "assets"

    @property
    def signing_dir(self) -> Path:
        return (
            Path(self.provenance_dir).expanduser()
            if self.provenance_dir
            else (self.data_dir / "provenance")
        )

    @property
    def models_dir(self) -> Path:
        """HF_HOME: every hub download is cached here, on Drive when Drive is mounted."""
        return self.data_dir / "models"

    @property
    def compile_cache_dir(self) -> Path:
        return self.data_dir / "compile-cache"

    @property
    def work_dir(self) -> Path:
        """Temp folders of renders and swaps: on the machine's local disk (never on Drive),
        one per data dir; folders of dead processes are swept at start-up."""
        import hashlib
        import tempfile

        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"enfoads-work-{digest}"

    @property
    def db_on_local_disk(self) -> bool:
        """The live SQLite file is off the data dir (see ``db_location``)."""
        if self.database_url or self.db_location == "data_dir":
            return False
        if self.db_location == "local":
            return True
        from enfoads.core.dbfile import on_network_fs

        return on_network_fs(self.data_dir)

    @property
    def db_backup_path(self) -> Path:
        """The database in the data dir: the live file, or its copy when that is local."""
        return self.data_dir / "enfoads.db"

    @property
    def live_db_path(self) -> Path:
        if not self.db_on_local_disk:
            return self.db_backup_path
        import hashlib
        import tempfile

        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"enfoads-db-{digest}" / "enfoads.db"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.live_db_path}"

    def job_timeout(self, kind: str, default: float | None = None) -> float:
        """The limit of a job kind: ``job_timeouts_s``, then ``default`` (its ``JobSpec``'s),
        then ``job_timeout_s``."""
        if kind in self.job_timeouts_s:
            return float(self.job_timeouts_s[kind])
        return float(default if default is not None else self.job_timeout_s)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def ensure_dirs(self) -> None:
        """The data dir and its folders, made private (0700) when the studio makes them; the
        live database's local folder always is (it holds the attach token)."""
        for path in (self.data_dir, self.assets_dir, self.models_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.db_on_local_disk:
            from enfoads.core.files import private_dir

            private_dir(self.live_db_path.parent)

    def apply_cache_env(self) -> None:
        """Point the libraries' caches into the data dir before torch or the hub are imported.

        HF_HOME (model downloads) and Inductor's and Triton's compile caches, so on Colab both
        live on Drive and survive the session. This writes the *libraries'* variables; it is the
        one place that touches the environment, and only where the user has chosen nothing.
        """
        os.environ.setdefault("HF_HOME", str(self.models_dir))
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(self.compile_cache_dir / "inductor"))
        os.environ.setdefault("TRITON_CACHE_DIR", str(self.compile_cache_dir / "triton"))


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; keyword arguments win over the environment and the file. A
    bad value is an ``InvalidInput`` naming its variable and what it accepts (no pydantic
    dump)."""
    from pydantic import ValidationError

    from enfoads.core.errors import InvalidSetting
    from enfoads.core.i18n import Reason
    from enfoads.core.validation import validation_reason

    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        name = "_".join(str(p) for p in first.get("loc", ())) or "settings"
        raise InvalidSetting(
            "error.invalid_setting",
            field=name,
            variable=ENV_PREFIX + name.upper(),
            reason=validation_reason(first),
        ) from None
    if settings.storage == "s3" and not settings.s3_bucket.strip():  # a bucket needs its name
        raise InvalidSetting(
            "error.invalid_setting",
            field="s3_bucket",
            variable=ENV_PREFIX + "S3_BUCKET",
            reason=Reason("reason.missing"),
        )
    return settings
