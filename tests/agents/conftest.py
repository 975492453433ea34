"""Fixtures of the agent tests: a crash of an agent fails the test instead of exiting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import streams.app
from tests.agents.harness import Harness, Scenario, crash_recorder, run_agent


@pytest.fixture
def crashes(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """``streams.app._crash`` calls ``os._exit``, which would end the test session."""
    seen: list[BaseException] = []
    monkeypatch.setattr(streams.app, "_crash", crash_recorder(seen))
    return seen


@pytest.fixture
def run(tmp_path: Path, crashes: list[BaseException]) -> Callable[[str, Scenario], Harness]:
    def start(name: str, scenario: Scenario) -> Harness:
        harness = run_agent(tmp_path, crashes, name, scenario)
        assert not crashes, f"agent {name} crashed: {crashes[0]!r}"
        return harness

    return start
