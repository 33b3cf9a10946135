"""The capability contract: every capability declares its models, jobs and options, receives
narrow services, validates a request once, and the package has no import circle.

``EchoCapability`` (``tests/echo_capability.py``, a module of the tests only) is the template
CONTRIBUTING.md points to: a new capability is one module like it, plus its line in
``enfoads.core.pipelines.CAPABILITIES`` (or ``ENFOADS_EXTRA_CAPABILITIES`` for a plugin).
"""

from __future__ import annotations

import ast
import json
import typing
from pathlib import Path

import pytest

from enfoads.core.capability import Capability, ContractError, JobSpec, ModelSpec
from enfoads.core.errors import InvalidInput
from enfoads.core.jobs import JobResult, JobState
from enfoads.core.pipelines import capability_classes
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel
from tests.echo_capability import EchoCapability, EchoRequest

PACKAGE = Path(__file__).resolve().parents[1] / "enfoads"


@pytest.fixture()
def studio(tmp_path):
    EchoCapability.checks = 0
    EchoCapability.started.clear()
    EchoCapability.release.set()
    with Studio(load_settings(data_dir=tmp_path, device="cpu", language="en")) as s:
        yield s


def test_every_capability_satisfies_the_contract(studio):
    """Each registered capability: its jobs have request models that refuse a bad request with
    a clear error before anything is queued, its models are in the inventory, its options are
    JSON, and it only reaches the capabilities it named."""
    inventory = {row["key"]: row for row in studio.model_inventory()}
    classes = capability_classes()
    assert [cls.name for cls in classes] == list(studio.capabilities)
    for cls in classes:
        cap = studio.capabilities[cls.name]
        assert isinstance(cap, cls) and not hasattr(cap, "studio"), cls.name
        for spec in cap.jobs():
            assert issubclass(spec.request, RequestModel)
            assert (
                studio.capabilities.job(spec.kind) is spec
                or studio.capabilities.job(spec.kind).kind == spec.kind
            )
            with pytest.raises(InvalidInput) as bad:
                studio.submit(spec.kind, {"no_such_field": 1})
            assert bad.value.field and bad.value.message("es") != bad.value.message("en")
        for model in cap.models():
            row = inventory[model.key]
            assert row["capability"] == cls.name and row["licence"] and row["size_bytes"] >= 0
        json.dumps(cap.options())
        for other in studio.capabilities:
            if other not in cls.needs:
                with pytest.raises(ContractError):
                    cap.services.need(other)
    assert studio.list_jobs() == []  # nothing bad was queued
    # The inventory is the declared models, no more: the template's model is not there yet.
    assert set(inventory) == {
        m.key for cls in classes for m in studio.capabilities[cls.name].models()
    }


def test_a_new_capability_plugs_in_without_touching_anything_else(studio):
    cap = studio.capabilities.add(EchoCapability)
    assert "echo-model" in {row["key"] for row in studio.model_inventory()}
    described = studio.describe_capabilities()["echo"]
    assert described == {
        "needs": ["voice"],
        "jobs": {"echo": "EchoRequest"},
        "models": ["echo-model"],
        "asset_kinds": {},
        "options": {"max_times": 5, "voices": 9},
    }
    assert studio.options("echo")["max_times"] == 5
    job = studio.wait_job(studio.submit("echo", {"text": "  hola ", "times": 2}).id, 30)
    assert job.state is JobState.COMPLETED and job.result["echo"] == "hola hola"
    assert job.params == {"text": "hola", "times": 2}  # stored as checked
    assert EchoCapability.checks == 1
    # A bad request: refused once, by the request model or the check, in the user's words.
    with pytest.raises(InvalidInput, match="'times'"):
        studio.submit("echo", {"text": "x", "times": 9})
    with pytest.raises(InvalidInput, match="'text' is empty"):
        studio.submit("echo", {"text": "  "})
    assert EchoCapability.checks == 2  # the range error never reached the check
    # "prepare" works for it like for every declared model.
    prepared = studio.wait_job(studio.prepare_model("echo-model").id, 30)
    assert prepared.state is JobState.COMPLETED, prepared.error
    assert cap.services.settings is studio.settings


def test_the_contract_is_checked_when_a_capability_registers(studio):
    class NoName(Capability):
        pass

    class NeedsUnknown(Capability):
        name = "needy"
        needs = ("no-such-capability",)

    class PlainDictJob(Capability):
        name = "plain"

        def jobs(self):
            return [JobSpec("plain", dict, lambda ctx, r: JobResult())]  # type: ignore[arg-type]

    class NoLicence(Capability):
        name = "nolicence"

        def models(self):
            return [ModelSpec("x", self.name, "X", "", 1, lambda: False)]

    class TakenKey(Capability):
        name = "taken"

        def models(self):
            return [ModelSpec("sdxl-lightning", self.name, "SDXL again", "MIT", 1, lambda: False)]

    class TakenJob(Capability):
        name = "takenjob"

        def jobs(self):
            return [JobSpec("generate_image", EchoRequest, lambda ctx, r: JobResult())]

    for cls, words in (
        (NoName, "name"),
        (NeedsUnknown, "not registered before"),
        (PlainDictJob, "RequestModel"),
        (NoLicence, "licence"),
        (TakenKey, "declared twice"),
        (TakenJob, "registered twice"),
    ):
        with pytest.raises(ContractError, match=words):
            studio.capabilities.add(cls)
        assert getattr(cls, "name", "") not in studio.capabilities or cls.name == ""


def test_a_request_is_validated_once_on_its_way_in(tmp_path, monkeypatch):
    """Over HTTP the route's body is the request model (parsed once, by FastAPI) and the
    capability's check runs once; the job runs the stored request."""
    from fastapi.testclient import TestClient

    from enfoads.core.pipelines.image import ImagePipeline
    from enfoads.server.app import create_app

    calls = []
    original = ImagePipeline.validate
    monkeypatch.setattr(
        ImagePipeline, "validate", lambda self, r: calls.append(r) or original(self, r)
    )
    settings = load_settings(data_dir=tmp_path, device="cpu", language="en")
    with Studio(settings) as studio:
        client = TestClient(create_app(studio))
        reply = client.post(
            "/generate-image", json={"prompt": "lamp", "placements": ["1:1", "9:16"]}
        )
        assert reply.status_code == 202, reply.text
        assert len(calls) == 1
        stored = studio.get_job(reply.json()["job_id"]).params
        assert stored["seed"] is not None and stored["placements"] == ["1:1", "9:16"]
        # The same request from a panel (keywords) or notebook code (the model itself).
        studio.generate_images(prompt="lamp")
        from enfoads.core.pipelines.image import GenerateImageRequest

        studio.generate_images(GenerateImageRequest(prompt="lamp", num_images=2))
        assert len(calls) == 3
        bad = client.post("/generate-image", json={"prompt": "lamp", "num_images": 40})
        assert bad.status_code == 422 and bad.json()["field"] == "num_images"
        assert len(calls) == 4


def test_each_route_takes_its_capabilitys_request_model(studio):
    """No request field or default is declared twice: the HTTP body of every job route (and of
    the direct calls) is the model the pipeline declares, in the OpenAPI schema too."""
    import inspect

    from enfoads.core.pipelines import faceswap, image, video, voice
    from enfoads.server.app import create_app

    app = create_app(studio).api
    bodies = {}

    def walk(routes):  # the hand-written routes and those derived from the JobSpecs
        for route in routes:
            inner = getattr(route, "original_router", None)  # an included router
            yield from walk(inner.routes) if inner is not None else [route]

    for route in walk(app.routes):
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None and "body" in inspect.signature(endpoint).parameters:
            hint = inspect.signature(endpoint).parameters["body"].annotation
            if isinstance(hint, str):
                hint = typing.get_type_hints(endpoint)["body"]
            bodies[route.path] = hint
    assert bodies["/generate-image"] is image.GenerateImageRequest
    for spec in studio.capabilities.job_specs():  # every kind, at /api/jobs/{kind}
        assert bodies[f"/api/jobs/{spec.kind}"] is spec.request
    assert bodies["/magic-prompt"] is image.MagicPromptRequest
    assert bodies["/render-video"] is video.RenderVideoRequest
    assert bodies["/render-multi-scene"] is video.RenderMultiSceneRequest
    assert bodies["/speak"] is voice.SpeakRequest
    assert bodies["/face-swap"] is faceswap.FaceSwapRequest
    assert bodies["/detect-faces"] is faceswap.DetectRequest
    schema = app.openapi()
    ref = schema["paths"]["/generate-image"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert ref["$ref"].endswith("/GenerateImageRequest")
    described = {j for c in studio.describe_capabilities().values() for j in c["jobs"].values()}
    # Face swap's two jobs come through one body (ids or base64 images, or a video): the face
    # choices of all three are one declaration.
    through = {"FaceSwapJobRequest", "FaceSwapVideoRequest", "PrepareModelRequest"}
    assert described - through <= set(schema["components"]["schemas"])
    shared = faceswap.FaceSwapRequest.__mro__[1]
    assert issubclass(faceswap.FaceSwapJobRequest, shared) and issubclass(
        faceswap.FaceSwapVideoRequest, shared
    )
    # and no route module declares a request model of a job
    for path in (PACKAGE / "server" / "routes").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        assert not names & (
            described | {"MagicPromptRequest", "SpeakRequest", "FaceSwapRequest"}
        ), path


def _imports(path: Path, module: str) -> set[str]:
    """Every enfoads module ``path`` imports, anywhere in it (TYPE_CHECKING and function-level
    imports included: the structure drawing shows those too)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def test_the_package_has_no_import_circle():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        )
        modules[name] = path
    graph = {m: {n for n in _imports(p, m) if n in modules and n != m} for m, p in modules.items()}
    # Depth-first search for a back edge; the circle is named if one is found.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (circle := visit(n)):
                return circle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            circle = visit(m)
            assert circle is None, " → ".join(circle)
    # and no pipeline knows the studio
    for path in (PACKAGE / "core" / "pipelines").glob("*.py"):
        assert "enfoads.core.studio" not in _imports(path, "enfoads.core.pipelines.x"), path


def test_a_wrong_choice_is_named_in_the_users_language(tmp_path):
    """A request model's choices (a Literal) are listed in the studio's language, with no
    English "or" from pydantic in a Spanish sentence."""
    from fastapi.testclient import TestClient

    from enfoads.server.app import create_app

    with Studio(load_settings(data_dir=tmp_path, device="cpu", language="es")) as studio:
        client = TestClient(create_app(studio))
        body = {"script": "Hola.", "avatar_asset_id": "ava_x", "animator": "magia"}
        reply = client.post("/render-video", json=body)
        assert reply.status_code == 422 and reply.json()["field"] == "animator"
        message = reply.json()["message"]
        assert "auto, lipsync, liveportrait, classic" in message and " or " not in message, message
        with pytest.raises(InvalidInput) as bad:
            studio.render_video(**body)
        assert "auto, lipsync, liveportrait, classic" in bad.value.message("es")


# -- the edges: one spec per job kind serves every surface ------------------------------------
ENGINE_ONLY = {  # what only the process that owns the data dir does
    "check_writable",  # the lease's fence (the engine answers 503 to an attached page)
    "import_seed_assets",  # a path on the engine's machine (the attached call sends bytes)
    "job_store",
    "job_timeout",
    "on_close",
    "publish_api",
    "sweep",
    "warm_start",
}


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_both_studios_offer_the_same_facade():
    """The engine's Studio and a page's AttachedStudio: neither lacks a member of the other
    (beyond what only the engine does), and both implement StudioAPI, written once."""
    from enfoads.attached import AttachedStudio
    from enfoads.core.api import StudioAPI

    studio, attached = _public(Studio), _public(AttachedStudio)
    assert studio - ENGINE_ONLY == attached, (
        f"missing on AttachedStudio: {sorted(studio - ENGINE_ONLY - attached)}; "
        f"missing on Studio: {sorted(attached - studio)}"
    )
    protocol = {n for n in dir(StudioAPI) if not n.startswith("_")} | set(
        typing.get_type_hints(StudioAPI)
    )
    assert protocol - {"settings", "is_engine"} <= attached and protocol <= studio | {"settings"}
    assert not (studio - ENGINE_ONLY) - protocol - {"PERSISTED"}, "a member StudioAPI lacks"
    # the per-kind methods are written once, over submit
    for name in ("generate_images", "render_video", "swap_faces", "prepare_model"):
        assert getattr(Studio, name) is getattr(AttachedStudio, name)


def test_the_core_imports_no_queue_server_or_attached_code():
    """The core is the studio; Celery, the HTTP server and the attached client live outside
    it (the engine's job backend is handed to Studio by ``enfoads.attach.make_studio``)."""
    for path in (PACKAGE / "core").rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        bad = {
            m
            for m in _imports(path, module)
            if m.startswith(("enfoads.workers", "enfoads.server", "enfoads.attached", "celery"))
            or m in ("enfoads.attach", "enfoads.widgets")
        }
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"
    for path in (PACKAGE / "widgets").rglob("*.py"):  # panels see the facade, not the engine
        assert "enfoads.core.studio" not in _imports(path, "enfoads.widgets.x"), path


def test_a_capability_defined_in_a_test_module_reaches_every_surface(tmp_path):
    """``tests/echo_capability.py``, registered by a setting: the notebook facade, the HTTP
    API (its route, body and answer in the schema, so the TypeScript client), an attached
    studio in a second process, and the React client's Socket.IO library all reach its job
    with no line written for it anywhere else. (A Celery worker: ``test_celery.py``.)"""
    import os
    import subprocess
    import sys

    import httpx

    import enfoads

    entry = "tests.echo_capability:EchoCapability"
    settings = load_settings(
        data_dir=tmp_path / "data", device="cpu", language="es", extra_capabilities=entry
    )
    studio = enfoads.connect(settings, warm=False)  # the engine, its API on a loopback port
    try:
        assert isinstance(studio, Studio) and "echo" in studio.describe_capabilities()
        job = studio.wait_job(studio.submit("echo", {"text": " hola ", "times": 2}).id, 30)
        assert job.result["echo"] == "hola hola"  # the notebook facade
        info = studio.registry.current()
        http = httpx.Client(
            base_url=info.url, headers={"Authorization": f"Bearer {info.token}"}, timeout=30
        )
        reply = http.post("/api/jobs/echo", json={"text": "api"})  # the HTTP API
        assert reply.status_code == 202 and reply.json()["job"]["kind"] == "echo"
        done = studio.wait_job(reply.json()["job_id"], 30)
        assert done.result["echo"] == "api"
        bad = http.post("/api/jobs/echo", json={"text": "x", "times": 9})
        assert bad.status_code == 422 and "times" in bad.json()["message"]
        unknown = http.post("/api/jobs/nada", json={})
        assert unknown.status_code == 404 and "nada" in unknown.json()["message"]
        schema = http.get("/openapi.json").json()
        body = schema["paths"]["/api/jobs/echo"]["post"]
        assert body["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/EchoRequest"
        )
        assert body["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/QueuedJob"
        )
        # an attached studio in a second process: the same facade, over the engine's API
        env = {**os.environ, "ENFOADS_DATA_DIR": str(settings.data_dir), "ENFOADS_DEVICE": "cpu"}
        env["ENFOADS_EXTRA_CAPABILITIES"] = entry
        code = (
            "import enfoads, json; s = enfoads.connect(); "
            "assert not s.is_engine, 'not attached'; "
            "j = s.submit('echo', {'text': 'página', 'times': 3}); "
            "print(json.dumps(s.wait_job(j.id, 60).result)); s.close()"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=PACKAGE.parent,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert json.loads(out.stdout.splitlines()[-1])["echo"] == "página página página"
        # the React client's own Socket.IO library follows it to the end
        client = PACKAGE.parent / "clients" / "typescript"
        import shutil

        if shutil.which("node") and (client / "node_modules" / "socket.io-client").is_dir():
            watched = subprocess.run(
                ["node", "scripts/watch-job.mjs", info.url, info.token, "/api/jobs/echo"]
                + [json.dumps({"text": "node"})],
                capture_output=True,
                text=True,
                cwd=client,
                timeout=120,
            )
            assert watched.returncode == 0, watched.stderr
            last = json.loads(watched.stdout.splitlines()[-1])
            assert last["state"] == "completed" and last["result"]["echo"] == "node"
        http.close()
    finally:
        studio.close()


def test_every_function_of_the_package_reads_in_one_screen():
    """No function or method of the package is over 80 lines (ruff's complexity rules hold
    the branches and statements; this holds the length)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert not long, long


class PhotoNoteRequest(RequestModel):
    """A note on a photo sent inline as base64 (what a body limit is for)."""

    photo: str


class PhotoNoteCapability(Capability):
    name = "photo_note"

    def jobs(self) -> list[JobSpec]:
        return [JobSpec("photo_note", PhotoNoteRequest, self.run, rate="upload", body_uploads=1)]

    def asset_kinds(self) -> dict[str, tuple[str, ...]]:
        return {"photo_note": ("json",)}  # a kind of asset of its own

    def run(self, ctx, request: PhotoNoteRequest) -> JobResult:
        note = json.dumps({"chars": len(request.photo)}).encode()
        asset = self.services.assets.add_bytes(note, "photo_note", ext="json", job_id=ctx.job_id)
        return JobResult((asset.id,), {"chars": len(request.photo)})


def test_a_job_kinds_body_limit_is_declared_in_its_spec_not_in_the_guard(studio):
    """A kind whose request carries a file says so in its ``JobSpec``; the guard reads the
    limit from the routes (no path written in it): its 3 MB body queues, while the same body
    to a kind of small JSON is refused before it is read."""
    from fastapi.testclient import TestClient

    from enfoads.server.app import create_app

    studio.capabilities.add(PhotoNoteCapability)
    photo = "A" * (3 * 2**20)  # past small JSON's 1 MB, inside one upload's worth (25 MB)
    with TestClient(create_app(studio)) as c:
        ok = c.post("/api/jobs/photo_note", json={"photo": photo})
        refused = c.post("/generate-image", json={"prompt": photo})
        schema = c.get("/openapi.json").json()
        too_big = c.post("/api/jobs/photo_note", json={"photo": "A" * (40 * 2**20)})
    assert ok.status_code == 202, ok.text
    assert refused.status_code == 413 and "1.0 MB" in refused.json()["message"]
    assert too_big.status_code == 413
    assert schema["paths"]["/api/jobs/photo_note"]["post"]["x-body-uploads"] == 1
    assert schema["paths"]["/api/assets"]["post"]["x-body-uploads"] == 1
    done = studio.wait_job(ok.json()["job_id"], 30)
    assert done.state is JobState.COMPLETED and done.result["chars"] == len(photo)
    # its own asset kind, declared in the module: stored, listed, tagged, never uploaded
    [note] = studio.list_assets(kind="photo_note").items
    assert note.id.startswith("pho_") and note.id == done.result_asset_ids[0]
    assert "verano" in studio.tag_asset(note.id, add=("verano",)).tags
    with pytest.raises(InvalidInput):
        studio.upload_asset(b"{}", "note.json", kind="photo_note")
    with pytest.raises(ContractError, match="body_uploads"):
        JobSpec("bad", PhotoNoteRequest, lambda *_: None, body_uploads=-1)
