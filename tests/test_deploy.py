"""The deployment files (issue #36): what can be checked where Docker does not run. Every
ENFOADS_ variable of the compose file is a setting the studio reads, every command one its CLI
takes, every file a Dockerfile copies is in the repository, every extra it installs is
declared, and the database URL's driver is one SQLAlchemy loads."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml
from sqlalchemy.engine import make_url

from enfoads.cli import build_parser
from enfoads.core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def studio_services(spec: dict) -> dict[str, dict]:
    return {k: v for k, v in spec["services"].items() if k == "engine" or k.startswith("worker")}


def test_the_compose_files_variables_are_the_studios_settings_and_commands_its_cli():
    spec = compose()
    services = studio_services(spec)
    assert set(services) >= {"engine", "worker-gpu0"}
    parser = build_parser()
    for name, service in services.items():
        env = service["environment"]
        unknown = [
            k
            for k in env
            if k.startswith(ENV_PREFIX)
            and k[len(ENV_PREFIX) :].lower() not in Settings.model_fields
        ]
        assert not unknown, (name, unknown)
        assert env["ENFOADS_QUEUE"] == "celery" and env["ENFOADS_DATA_DIR"] == "/data"
        command = service["command"]
        assert command[0] == "enfoads"
        args = parser.parse_args(command[1:])  # exits (fails the test) on an unknown option
        assert args.command in ("serve", "worker")
        assert set(service["depends_on"]) == {"postgres", "redis", "minio-bucket"}
        url = make_url(re.sub(r"\$\{[^}]*\}", "secret", env["ENFOADS_DATABASE_URL"]))
        assert url.get_dialect().driver == "psycopg" and url.host == "postgres"
        assert re.sub(r"\$\{[^}]*\}", "s", env["ENFOADS_REDIS_URL"]).startswith("redis://:s@redis")
    assert services["engine"]["environment"]["ENFOADS_SERVER_TOKEN"].startswith("${")
    for backing in ("postgres", "redis", "minio"):
        assert spec["services"][backing]["healthcheck"]["test"]


def test_no_two_studio_services_share_a_filesystem_but_all_share_the_bucket():
    """Issue #36: the engine and each worker have a data volume of their own; what they share
    is PostgreSQL, Redis and MinIO's bucket (made by minio-bucket, with MinIO's own user), and
    the signing identity."""
    spec = compose()
    services = studio_services(spec)
    data_volumes = {}
    for name, service in services.items():
        mounts = dict(v.split(":", 1)[::-1] for v in service["volumes"])
        assert mounts["/signing"] == "signing"
        data_volumes[name] = mounts["/data"]
        env = service["environment"]
        assert env["ENFOADS_STORAGE"] == "s3" and env["ENFOADS_PROVENANCE_DIR"] == "/signing"
        assert env["ENFOADS_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert (
            env["ENFOADS_S3_ACCESS_KEY_ID"]
            == spec["services"]["minio"]["environment"]["MINIO_ROOT_USER"]
        )
        made = " ".join(spec["services"]["minio-bucket"]["entrypoint"])
        assert f"mc mb --ignore-existing s3/{env['ENFOADS_S3_BUCKET']}" in made
    assert len(set(data_volumes.values())) == len(services)  # no data volume shared
    assert set(data_volumes.values()) <= set(spec["volumes"])


def test_the_dockerfiles_copy_what_exists_and_install_declared_extras():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    parser = build_parser()
    for dockerfile in ("Dockerfile.engine", "Dockerfile.worker"):
        text = (DEPLOY / dockerfile).read_text()
        for sources in re.findall(r"^COPY (.+) \S+$", text, re.MULTILINE):
            for source in sources.split():
                assert (ROOT / source).exists(), (dockerfile, source)
        for wanted in re.findall(r'"\.\[([\w,]+)\]"', text):
            assert set(wanted.split(",")) <= set(extras), (dockerfile, wanted)
        cmd = re.search(r"^CMD (\[.+\])$", text, re.MULTILINE)
        command = yaml.safe_load(cmd[1])
        assert command[0] == "enfoads" and parser.parse_args(command[1:]).command
        assert "ENFOADS_QUEUE=celery" in text
    assert "psycopg" in " ".join(extras["cluster"])
