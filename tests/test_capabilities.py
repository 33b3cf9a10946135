"""The capability contract: every capability declares its models, jobs and options, receives
narrow services, validates a request once, and the package has no import circle.

``EchoCapability`` below is the template CONTRIBUTING.md points to: a new capability is one
module like it, plus its line in ``enfoads.core.pipelines.CAPABILITIES``.
"""

from __future__ import annotations

import ast
import json
import threading
import typing
from pathlib import Path

import pytest
from pydantic import Field

from enfoads.core.capability import Capability, ContractError, JobSpec, ModelSpec
from enfoads.core.errors import InvalidInput
from enfoads.core.jobs import JobResult, JobState
from enfoads.core.pipelines import capability_classes
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel

PACKAGE = Path(__file__).resolve().parents[1] / "enfoads"


# -- the template ----------------------------------------------------------------------------
class EchoRequest(RequestModel):
    text: str
    times: int = Field(1, ge=1, le=5)


class EchoCapability(Capability):
    """A capability in one class: a model, a job with its request model, options, needs."""

    name = "echo"
    needs = ("voice",)  # reached through services.need("voice"), nothing else
    checks = 0  # how often a request was checked (once per submission)
    started = threading.Event()
    release = threading.Event()

    def models(self) -> list[ModelSpec]:
        return [
            ModelSpec(
                "echo-model",
                self.name,
                "Echo 1.0",
                "MIT",
                1234,
                lambda: True,
                load=lambda: {"weights": 1},
                memory_bytes=1000,
            )
        ]

    def jobs(self) -> list[JobSpec]:
        return [JobSpec("echo", EchoRequest, self.run, check=self.check)]

    def options(self) -> dict[str, typing.Any]:
        return {"max_times": 5, "voices": len(self.services.need("voice").catalogue())}

    def check(self, request: EchoRequest) -> EchoRequest:
        type(self).checks += 1
        if not request.text.strip():
            raise InvalidInput("error.empty", field="text")
        return request.model_copy(update={"text": request.text.strip()})

    def run(self, ctx, request: EchoRequest) -> JobResult:
        type(self).started.set()
        type(self).release.wait(10)
        with self.services.models.use("echo-model") as model:
            return JobResult(
                data={"echo": " ".join([request.text] * request.times), "model": model}
            )


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
    from enfoads.core.pipelines import faceswap, image, video, voice
    from enfoads.server import routes
    from enfoads.server.app import create_app

    app = create_app(studio).api
    bodies = {}
    for module in (PACKAGE / "server" / "routes").glob("*.py"):
        if module.stem == "__init__":
            continue
        router = __import__(f"{routes.__name__}.{module.stem}", fromlist=["router"]).router
        for route in router.routes:
            endpoint = getattr(route, "endpoint", None)
            if endpoint is not None and "body" in typing.get_type_hints(endpoint):
                bodies[route.path] = typing.get_type_hints(endpoint)["body"]
    assert bodies["/generate-image"] is image.GenerateImageRequest
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
        assert "auto, liveportrait, classic" in message and " or " not in message, message
        with pytest.raises(InvalidInput) as bad:
            studio.render_video(**body)
        assert "auto, liveportrait, classic" in bad.value.message("es")
