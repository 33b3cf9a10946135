"""A stand-in for the ``google.colab`` module, for running the notebook as Colab would.

Only in the tests (on ``PYTHONPATH`` for nbval and the Colab-like environment). Each function
the notebook calls is recorded, one JSON line per call, in the file named by
``COLAB_STANDIN_LOG``, so a test can check what the notebook asked of Colab (Drive mounted,
secrets read, no custom widget manager). Nothing here pretends to work beyond that: Drive is a
folder named by ``COLAB_STANDIN_DRIVE`` (or nothing), secrets come from ``COLAB_STANDIN_*``
variables, and the output helpers only record.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def record(module: str, name: str, *args: Any, **kwargs: Any) -> None:
    path = os.environ.get("COLAB_STANDIN_LOG")
    if not path:
        return
    entry = {
        "call": f"{module}.{name}",
        "args": [repr(a) for a in args],
        "kwargs": {k: repr(v) for k, v in kwargs.items()},
        "at": time.time(),
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
