"""Parity runner: rebuild a model from a fixture sidecar, run it on CPU in fp32, compare with the official outputs.

``python -m facelift_models.parity FIXTURE.json [...] [--atol X]``. Each fixture ``kind`` has its own module
in this package exposing ``run(fixture: Fixture, report: Report) -> None``; they are imported only when a
fixture of that kind is run.
"""

from .common import Fixture, Report, run_fixture, KIND_MODULES  # noqa: F401
