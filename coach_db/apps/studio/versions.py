"""Studio pages of prompt versions: a scenario's versions, one version, and a diff of two.

Versions are written by the database (migration 6) and are read-only here for every role.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import difflib
import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi_admin.depends import get_resources
from starlette.status import HTTP_404_NOT_FOUND

from coach_db.apps.studio import params
from coach_db.apps.studio.auth import require_staff
from coach_db.apps.studio.templating import render
from coach_db.models import Scenario, ScenarioVersion

router = APIRouter(dependencies=[Depends(require_staff)])
Sidebar = Annotated[Any, Depends(get_resources)]

FIELDS = (
    ("partner_persona", "Partner persona"),
    ("partner_system_prompt", "Partner system prompt"),
    ("coach_system_prompt", "Coach system prompt"),
    ("partner_model", "Partner model"),
    ("coach_model", "Coach model"),
)
VERSIONS_PER_PAGE = 50
# Word by word up to this many words a side; longer texts are compared line by line, so a diff
# never costs more than a bounded amount (SequenceMatcher is quadratic at worst).
MAX_WORDS = 5_000
MAX_VERSION = 2**31 - 1
# A word with the spaces after it: changed runs of words stay together, not split at spaces.
_WORDS = re.compile(r"\S+\s*|\s+")
# A version 1 recorded this long after its scenario was created was made by migration 6 for
# a scenario that existed before it (or imported with an older created_at): earlier prompts
# are unknown. A scenario created since gets version 1 in the same transaction.
RECORDED_LATE = timedelta(minutes=1)


def diff(old: str, new: str) -> list[tuple[str, str]]:
    """`old` -> `new` as (kind, text) pieces, kind "same", "del" or "ins"; the template
    escapes the text like every other value."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    if max(len(a), len(b)) > MAX_WORDS:
        a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(a[a1:a2])))
            continue
        if a2 > a1:
            pieces.append(("del", "".join(a[a1:a2])))
        if b2 > b1:
            pieces.append(("ins", "".join(b[b1:b2])))
    return pieces


async def _scenario(pk: str) -> Scenario:
    try:
        key = params.parse_id(pk, Scenario)
    except params.BadValue:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND) from None
    scenario = await Scenario.get_or_none(pk=key)
    if scenario is None:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    return scenario


def _number(value: str | None) -> int | None:
    """A version number from the URL: ASCII digits in range, else a 404."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= MAX_VERSION):
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    return int(value)


async def _version(scenario: Scenario, number: int) -> ScenarioVersion:
    version = await ScenarioVersion.get_or_none(scenario_id=scenario.pk, version=number)
    if version is None:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    return version


@router.get("/scenario/{pk}/versions")
async def versions_list(
    request: Request, pk: str, resources: Sidebar, before: str | None = None
) -> Response:
    """A scenario's versions, newest first, VERSIONS_PER_PAGE a page; a form to compare two."""
    scenario = await _scenario(pk)
    older_than = _number(before)
    query = ScenarioVersion.filter(scenario_id=scenario.pk)
    if older_than is not None:
        query = query.filter(version__lt=older_than)
    versions = await query.order_by("-version").limit(VERSIONS_PER_PAGE + 1)
    more = len(versions) > VERSIONS_PER_PAGE
    versions = versions[:VERSIONS_PER_PAGE]
    latest = await ScenarioVersion.filter(scenario_id=scenario.pk).order_by("-version").first()
    first = await ScenarioVersion.get_or_none(scenario_id=scenario.pk, version=1)
    recorded_late = first is not None and first.created_at - scenario.created_at > RECORDED_LATE
    context = {
        "resources": resources,
        "resource_label": "Scenarios",
        "page_pre_title": f"Scenario #{scenario.pk}",
        "page_title": f"Versions of {scenario}",
        "scenario": scenario,
        "versions": versions,
        "latest": latest.version if latest else None,
        "more": more,
        # When version 1 was recorded, if that was after the scenario was created.
        "recorded_since": first.created_at if recorded_late and first else None,
    }
    return render(request, "versions.html", context)


@router.get("/scenario/{pk}/versions/{number}")
async def version_view(
    request: Request, pk: str, number: str, resources: Sidebar, against: str | None = None
) -> Response:
    """One version in full, and what changed since another one (by default the previous)."""
    scenario = await _scenario(pk)
    version = await _version(scenario, _number(number) or 0)
    other_number = _number(against)
    if other_number is None and version.version > 1:
        other_number = version.version - 1
    other = await _version(scenario, other_number) if other_number is not None else None
    changes = []
    for name, label in FIELDS:
        new = str(getattr(version, name))
        old = str(getattr(other, name)) if other is not None else None
        changes.append(
            {
                "label": label,
                "text": new,
                "changed": old is not None and old != new,
                "pieces": diff(old, new) if old is not None and old != new else [],
            }
        )
    context = {
        "resources": resources,
        "resource_label": "Scenarios",
        "page_pre_title": f"{scenario} · scenario #{scenario.pk}",
        "page_title": f"Version {version.version}"
        + (f" compared with version {other.version}" if other is not None else ""),
        "scenario": scenario,
        "version": version,
        "other": other,
        "changes": changes,
    }
    return render(request, "version.html", context)
