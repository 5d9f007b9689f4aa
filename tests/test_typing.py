"""mypy --strict and basedpyright on consumer code: correct code passes, each mistake is caught."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

# First CI pass only: mypy and basedpyright on files: no test server is involved.
pytestmark = pytest.mark.once

CORRECT = """\
from datetime import UTC, datetime

from coach_db import ConversationSession, Message, Scenario, SessionStatus, User
from coach_db.types import SessionRead, UserWithSessions


async def correct(history: UserWithSessions, user: User) -> str:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    active = await Scenario.filter(is_active=True, name__icontains="uncle").order_by("name")
    done = await ConversationSession.filter(
        user=user, status__in=[SessionStatus.COMPLETED], started_at__gte=since
    ).exclude(ended_at=None).limit(5)
    words = await Message.filter(session__user_id=user.id, timestamp__year=2026).count()
    found = await User.get_or_none(email__iexact="a@x.org", sessions__status=SessionStatus.ACTIVE)
    await Scenario.filter(slug__in=("a", "b")).update(is_active=False)
    made = await Scenario.create(name="A", slug="a", partner_model="m", is_active=True)
    staff, _ = await User.get_or_create(email="s@x.org", defaults={"username": "s"})
    await ConversationSession.create(user=staff, scenario_id=made.id)
    recent = user.sessions.filter(status=SessionStatus.ACTIVE).order_by("-started_at").limit(3)
    reads: list[SessionRead] = await SessionRead.from_queryset(recent)
    first = history.sessions[0]
    total: int = first.total_messages + len(first.messages) + words + len(done) + len(reads)
    return f"{first.scenario.name} {first.messages[0].content} {total} {active} {found}"
"""

# Each wrong line is marked `# WRONG`; both checkers must report an error there and nowhere else.
WRONG = """\
from coach_db import ConversationSession, Message, Scenario, User
from coach_db.types import UserWithSessions


async def wrong(history: UserWithSessions, user: User) -> None:
    print(history.sessions[0].scenario.nmae)  # WRONG misspelt field on a read type
    await Scenario.filter(is_activ=True)  # WRONG misspelt filter keyword
    await Scenario.filter(is_active="yes")  # WRONG wrong value type in a filter
    await Scenario.filter(is_active__icontains="y")  # WRONG text lookup on a bool
    await Message.filter(timestamp__year="2026")  # WRONG date part is an int
    await ConversationSession.filter(status__in=["nope"])  # WRONG not a SessionStatus
    await Scenario.filter(name="x").update(is_active="no")  # WRONG update value type
    await Message.filter(session__user__emial="a")  # WRONG misspelt field across a relation
    await user.sessions.filter(total_messages__icontains="1")  # WRONG on a reverse relation
    await Scenario.create(name="A", nmae="a")  # WRONG misspelt field in create
    await Scenario.create(name="A", is_active="yes")  # WRONG wrong value type in create
    await User.get_or_create(email="a@x.org", defaults={"usernme": "a"})  # WRONG defaults key
    scenario = await Scenario.get(slug="x")
    scenario.is_active = "yes"  # WRONG str assigned to a bool field
"""


def _wrong_lines() -> set[int]:
    return {n for n, line in enumerate(WRONG.splitlines(), 1) if "# WRONG" in line}


EXAMPLE = ROOT / "examples" / "service.py"
CHECKERS = {
    "mypy": [sys.executable, "-m", "mypy", "--strict", "--no-incremental"],
    # Errors only: basedpyright's default rule set also warns about style (unused results).
    "basedpyright": [sys.executable, "-m", "basedpyright", "--level", "error"],
}


@dataclass
class Checked:
    """The checker's output and exit status over the correct files, and over the wrong one."""

    correct: subprocess.CompletedProcess[str]
    wrong: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module", params=sorted(CHECKERS))
def checked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Two runs of the checker: the correct snippet with examples/service.py (must exit 0),
    and the wrong snippet alone (must exit 1, errors at its lines): a checker that crashes or
    checks nothing fails the tests instead of printing no error lines."""
    folder = tmp_path_factory.mktemp("typing")
    (folder / "correct_use.py").write_text(CORRECT)
    (folder / "wrong_use.py").write_text(WRONG)

    def run(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CHECKERS[request.param], *files],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return Checked(
        correct=run(str(folder / "correct_use.py"), str(EXAMPLE)),
        wrong=run(str(folder / "wrong_use.py")),
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _error_lines(output: str, name: str) -> set[int]:
    pattern = re.compile(rf"{re.escape(name)}:(\d+)(?::\d+)?:?(?: -)? error")
    return {int(m.group(1)) for m in pattern.finditer(output)}


def test_correct_consumer_code_type_checks(checked: Checked) -> None:
    output = _output(checked.correct)
    assert checked.correct.returncode == 0, output
    assert _error_lines(output, "correct_use.py") == set(), output


def test_each_mistake_is_reported_at_its_line(checked: Checked) -> None:
    output = _output(checked.wrong)
    assert checked.wrong.returncode == 1, output  # errors found (2 would be a crash/usage)
    assert _error_lines(output, "wrong_use.py") == _wrong_lines(), output


def test_the_example_service_type_checks(checked: Checked) -> None:
    output = _output(checked.correct)
    assert checked.correct.returncode == 0, output
    assert _error_lines(output, "service.py") == set(), output
    assert "service.py" not in output, output


def test_models_py_itself_type_checks() -> None:
    """`uv run mypy` reads coach_db/models.pyi instead of models.py, so check the source too."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "coach_db/models.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout
