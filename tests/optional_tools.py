"""Hypothesis when it is installed; otherwise stand-ins that skip the property tests with a reason.

The seed's Testing section installs only pytest and pytest-mock
(``pip install -r requirements.txt && pip install pytest pytest-mock && pytest tests/``). Hypothesis
comes with the ``dev`` extra (``pip install -e '.[dev]'``); without it, every ``@given`` test is
skipped with :data:`HYPOTHESIS_REASON` and every other test in the same file still runs. Test files
import ``given``, ``settings``, ``assume``, ``HealthCheck`` and ``st`` from here instead of from
``hypothesis``; module-level strategies are built from the stand-in ``st`` (any attribute, call or
``|`` gives the stand-in again), so the files import either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

__all__ = [
    "HAS_HYPOTHESIS",
    "HYPOTHESIS_REASON",
    "HealthCheck",
    "assume",
    "given",
    "settings",
    "st",
]

F = TypeVar("F", bound=Callable[..., Any])

#: why a property test was skipped, and how to get full coverage
HYPOTHESIS_REASON = (
    "property test: needs hypothesis (pip install -e '.[dev]' gives every optional test tool)"
)

try:
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    HAS_HYPOTHESIS = True
except ImportError:
    HAS_HYPOTHESIS = False

    class _Absent:
        """Stands for any strategy, strategy function or enum member of the missing Hypothesis."""

        def __getattr__(self, name: str) -> _Absent:
            return self

        def __call__(self, *args: object, **kwargs: object) -> _Absent:
            return self

        def __or__(self, other: object) -> _Absent:
            return self

        __ror__ = __or__

    st = HealthCheck = _Absent()  # type: ignore[assignment]

    def given(*args: object, **kwargs: object) -> Callable[[F], F]:  # type: ignore[no-redef]
        """Mark the property test skipped (its arguments are never asked for as fixtures)."""
        return pytest.mark.skip(reason=HYPOTHESIS_REASON)  # type: ignore[return-value]

    def settings(*args: object, **kwargs: object) -> Callable[[F], F]:  # type: ignore[no-redef]
        """Leave the test as it is: there is nothing to configure."""
        return lambda test: test

    def assume(condition: object) -> bool:  # type: ignore[misc]
        """Never reached: the tests that call it are skipped."""
        return True
