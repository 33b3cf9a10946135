"""A capability defined only in the tests: the template CONTRIBUTING.md points to.

One class: a model, a job kind with its request model (and where its edges are: route, queue,
time limit), options, needs. ``ENFOADS_EXTRA_CAPABILITIES=tests.echo_capability:EchoCapability``
registers it in any process (an engine, an attached page's engine, a Celery worker), and every
surface reaches it without a line elsewhere (``tests/test_capabilities.py``, ``test_celery.py``).
"""

from __future__ import annotations

import threading
import typing

from pydantic import Field

from enfoads.core.capability import Capability, JobSpec, ModelSpec
from enfoads.core.errors import InvalidInput
from enfoads.core.jobs import JobResult
from enfoads.core.validation import RequestModel


class EchoRequest(RequestModel):
    """Say ``text`` back, ``times`` times."""

    text: str = Field(max_length=200)
    times: int = Field(1, ge=1, le=5)


class EchoCapability(Capability):
    """A capability in one class: a model, a job with its request model, options, needs."""

    name = "echo"
    needs = ("voice",)  # reached through services.need("voice"), nothing else
    checks = 0  # how often a request was checked (once per submission)
    started = threading.Event()
    release = threading.Event()  # a test holds the job running by clearing it
    release.set()

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
        return [
            JobSpec("echo", EchoRequest, self.run, check=self.check, queue="images", timeout_s=60)
        ]

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
