"""The fuzz layer: properties over the request models, the text checks and the upload sniffers
(Hypothesis), and schemathesis following the API's links (generate → job → cancel/retry;
upload → tags → delete). Derandomized and bounded, so CI runs the same cases each time."""

from __future__ import annotations

import hashlib
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from enfoads.core import media
from enfoads.core.errors import EnfoadsError, InvalidInput
from enfoads.core.studio import Studio
from enfoads.core.validation import RequestModel, check_text, check_tree, scrub, storable
from enfoads.server.routes import assets, faceswap, images, jobs, video  # noqa: F401
from tests.helpers import missing_model

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def request_models() -> list[type[BaseModel]]:
    found, todo = [], list(RequestModel.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return sorted(found, key=lambda m: m.__name__)


def test_every_route_model_is_a_request_model():
    names = {m.__name__ for m in request_models()}
    assert {
        "GenerateImageRequest",
        "MagicPromptRequest",
        "RenderVideoRequest",
        "SpeakRequest",
        "FaceSwapRequest",
        "DetectRequest",
        "TagsRequest",
        "RenderMultiSceneRequest",
    } <= names


@pytest.mark.parametrize("model", request_models(), ids=lambda m: m.__name__)
def test_a_request_model_accepts_only_what_can_be_stored(model):
    fields = list(model.model_fields)

    @FUZZ
    @given(
        data=st.dictionaries(st.sampled_from(fields) | st.text(max_size=8), json_values, max_size=6)
    )
    def check(data):
        try:
            parsed = model.model_validate(data)
        except (ValidationError, InvalidInput):
            return  # refused with a message naming the field
        dumped = parsed.model_dump()
        storable(dumped, "params")  # never raises for an accepted request
        check_tree(dumped, "params")

    check()


@FUZZ
@given(text=st.text(max_size=200))
def test_check_text_and_scrub_agree(text):
    try:
        assert check_text(text, "f") == text
        assert scrub(text) == text
    except InvalidInput as exc:
        assert exc.field == "f" and exc.message("es") and exc.message("en")
        assert check_text(scrub(text), "f")  # scrubbed text is always valid
    storable(scrub({"k": text}), "f")


@FUZZ
@given(value=json_values)
def test_scrub_makes_any_value_storable(value):
    storable(scrub(value), "params")
    if isinstance(value, float) and not math.isfinite(value):
        assert scrub(value) is None


SIGNATURES = [
    prefix if offset == 0 else b"RIFF\x00\x00\x00\x00" + prefix
    for prefix, offset, _ext, _mime in media._SIGNATURES
]


@pytest.fixture
def store_studio(tmp_path):
    from enfoads.core.settings import load_settings

    with Studio(load_settings(data_dir=tmp_path / "data", device="cpu")) as st_:
        yield st_


def test_uploads_are_stored_whole_or_refused_leaving_nothing(store_studio):
    root = store_studio.settings.assets_dir

    @settings(
        max_examples=80,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        head=st.sampled_from([b""] + SIGNATURES),
        tail=st.binary(max_size=600),
        kind=st.sampled_from(
            [None, "image", "video", "audio", "font", "subtitle", "logo", "brand_kit", "nonsense"]
        ),
    )
    def check(head, tail, kind):
        before = sorted(root.rglob("*"))
        data = head + tail
        try:
            asset = store_studio.upload_asset(data, "fuzz.bin", kind)
        except EnfoadsError as exc:
            assert exc.message("es") and str(root) not in exc.message("en")
            assert sorted(root.rglob("*")) == before  # nothing half-written stays
            return
        path = store_studio.assets.file_path(asset)
        assert (
            hashlib.sha256(path.read_bytes()).hexdigest()
            == asset.sha256
            == hashlib.sha256(data).hexdigest()
        )
        store_studio.delete_asset(asset.id)

    check()


def test_stateful_links_never_give_a_server_error(tiny_settings):
    schemathesis = pytest.importorskip("schemathesis")
    from enfoads.server.app import create_app

    # Not started: jobs stay queued (no model runs), so cancel and retry have work to do.
    studio = Studio(tiny_settings(rate_limit_per_minute=100_000))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(studio))
    assert schema.statistic.transitions.total >= 10  # the links are in the schema
    calls: list[tuple[str, str, int]] = []

    class Machine(schema.as_state_machine()):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            calls.append((case.method, case.operation.path, response.status_code))
            assert response.status_code < 500 or missing_model(response), (
                case.method,
                case.path,
                response.text[:300],
            )
            if response.status_code >= 400:
                assert response.json()["message"]

    try:
        Machine.run(
            settings=settings(
                max_examples=60,
                stateful_step_count=6,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    finally:
        studio.close()
    # The links were followed: operations reached only through them were called.
    assert any("{job_id}" in p for _m, p, _c in calls), sorted({(m, p) for m, p, _c in calls})
    assert any("{asset_id}" in p for _m, p, _c in calls)
