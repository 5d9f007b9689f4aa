"""What mypy catches in a consumer's code, and what Tortoise's typing lets through."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

CONSUMER = """
from coach_db import Scenario

async def consumer() -> None:
    scenario = await Scenario.get(slug="angry-uncle")
    print(scenario.nmae)                      # line 6: misspelt field
    scenario.is_active = "yes"                # line 7: wrong type
    count: str = await Scenario.all().count() # line 8: wrong result type
    await Scenario.filter(is_activ=True)      # line 9: misspelt filter: NOT caught
"""


def test_mypy_catches_wrong_fields_and_types_but_not_filter_keywords(tmp_path: Path) -> None:
    source = tmp_path / "consumer.py"
    source.write_text(CONSUMER)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = {int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line}
    assert lines == {6, 7, 8}, result.stdout
    # filter()/get() take **kwargs: a misspelt keyword only fails at run time (FieldError).


def test_the_example_service_type_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "examples/service.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout
