"""The studio's prompt versions: a scenario's versions, one version, a diff of two, the version
a transcript ran with; versions are read-only and every value is escaped."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from coach_db import StaffRole, start_session
from coach_db.apps.studio.versions import diff
from tests.factories import make_scenario, make_user
from tests.studio import client_for, csrf, make_staff, sign_in


async def test_the_versions_page_lists_every_version_newest_first(
    staff: Any, raw: asyncpg.Connection
) -> None:
    scenario = await make_scenario()
    for model in ("model-2", "model-3"):
        await raw.execute("UPDATE scenario SET coach_model = $1 WHERE id = $2", model, scenario.pk)
    page = await staff.get(f"/admin/scenario/{scenario.pk}/versions")
    assert page.status_code == 200
    table = page.text[page.text.index('id="versions"') :]
    assert table.index("Version 3") < table.index("Version 2") < table.index("Version 1")
    assert "current" in table
    form = await staff.get(f"/admin/scenario/update/{scenario.pk}")
    assert f'href="/admin/scenario/{scenario.pk}/versions"' in form.text
    assert "Prompt versions (current: 3)" in form.text


async def test_only_a_scenario_older_than_its_version_record_says_its_past_is_unknown(
    staff: Any, raw: asyncpg.Connection
) -> None:
    """A scenario created since migration 6 has its whole history; one that existed before it
    (version 1 recorded by the upgrade, later than the scenario's created_at) says when the
    record began."""
    fresh, old = await make_scenario(), await make_scenario()
    await raw.execute(
        "UPDATE scenario SET created_at = created_at - interval '30 days' WHERE id = $1", old.pk
    )
    unknown = "what it was before is not known"
    assert "not known" not in (await staff.get(f"/admin/scenario/{fresh.pk}/versions")).text
    page = (await staff.get(f"/admin/scenario/{old.pk}/versions")).text
    recorded = await raw.fetchval(
        "SELECT created_at FROM scenario_version WHERE scenario_id = $1 AND version = 1", old.pk
    )
    assert unknown in page
    assert f"as it was on {recorded:%Y-%m-%d %H:%M:%S} UTC" in page


async def test_a_diff_marks_what_changed_between_two_versions_escaped(
    staff: Any, raw: asyncpg.Connection
) -> None:
    scenario = await make_scenario(coach_system_prompt="Be <b>kind</b> and brief.")
    await raw.execute(
        "UPDATE scenario SET coach_system_prompt = $1 WHERE id = $2",
        "Be <script>alert(1)</script> and brief.",
        scenario.pk,
    )
    page = await staff.get(f"/admin/scenario/{scenario.pk}/versions/2?against=1")
    assert page.status_code == 200
    assert '<del class="studio-del">&lt;b&gt;kind&lt;/b&gt; </del>' in page.text
    assert '<ins class="studio-ins">&lt;script&gt;alert(1)&lt;/script&gt; </ins>' in page.text
    assert "<script>alert(1)" not in page.text
    assert page.text.count(">unchanged<") == 4  # the other four fields
    # Against a later version works too, and version 1 alone shows its full text.
    assert (
        await staff.get(f"/admin/scenario/{scenario.pk}/versions/1?against=2")
    ).status_code == 200
    first = await staff.get(f"/admin/scenario/{scenario.pk}/versions/1")
    assert "Be &lt;b&gt;kind&lt;/b&gt; and brief." in first.text


@pytest.mark.parametrize(
    "path",
    [
        "/versions/9",
        "/versions/%EF%BC%91",
        "/versions/1?against=99",
        "/versions/1?against=x",
        "/versions/99999999999",
        "/versions?before=-1",
    ],
)
async def test_a_missing_or_malformed_version_is_404(staff: Any, path: str) -> None:
    scenario = await make_scenario()
    response = await staff.get(f"/admin/scenario/{scenario.pk}{path}")
    assert response.status_code == 404
    assert (await staff.get("/admin/scenario/999999/versions")).status_code == 404


async def test_the_transcript_links_the_version_the_session_ran_with(
    staff: Any, raw: asyncpg.Connection
) -> None:
    scenario = await make_scenario()
    session = await start_session(await make_user(), scenario)
    await raw.execute("UPDATE scenario SET partner_model = 'newer' WHERE id = $1", scenario.pk)
    page = await staff.get(f"/admin/conversationsession/transcript/{session.pk}")
    assert f'href="/admin/scenario/{scenario.pk}/versions/1">Version 1</a>' in page.text
    form = await staff.get(f"/admin/conversationsession/update/{session.pk}")
    assert "Prompt version 1 (what it ran with)" in form.text


async def test_a_viewer_reads_versions_and_nobody_can_write_them(
    studio_app: Any, raw: asyncpg.Connection
) -> None:
    """Versions are no studio resource: no list, form, save or delete route reaches them, for
    any role, with a valid CSRF token (so the refusal is the route's, not the CSRF check's)."""
    scenario = await make_scenario()
    stored = "SELECT row_to_json(v)::text FROM scenario_version v ORDER BY id"
    before = await raw.fetch(stored)
    assert len(before) == 1
    version_id = await raw.fetchval("SELECT id FROM scenario_version")
    attempts = [
        ("POST", f"/admin/scenario/{scenario.pk}/versions/1"),
        ("DELETE", f"/admin/scenario/{scenario.pk}/versions/1"),
        ("PUT", f"/admin/scenario/{scenario.pk}/versions"),
        ("GET", "/admin/scenarioversion/list"),
        ("GET", f"/admin/scenarioversion/update/{version_id}"),
        ("POST", f"/admin/scenarioversion/update/{version_id}"),
        ("POST", "/admin/scenarioversion/create"),
        ("DELETE", f"/admin/scenarioversion/delete/{version_id}"),
        ("DELETE", f"/admin/scenarioversion/delete?ids={version_id}"),
    ]
    for role in StaffRole:
        person = await make_staff(role=role)
        async with client_for(studio_app) as client:
            assert (await sign_in(client, person.email)).status_code == 303
            page = await client.get(f"/admin/scenario/{scenario.pk}/versions/1")
            assert page.status_code == 200
            headers = {"X-CSRF-Token": await csrf(client)}
            for method, url in attempts:
                data = {"csrf_token": headers["X-CSRF-Token"], "coach_model": "forged"}
                response = await client.request(method, url, headers=headers, data=data)
                refused = (role, method, url, response.status_code)
                if response.status_code == 403:  # the role check, never the CSRF check
                    assert "This needs the" in response.text
                    assert "security token" not in response.text
                    assert role is StaffRole.VIEWER, refused
                else:
                    assert response.status_code in {404, 405}, refused
    assert await raw.fetch(stored) == before


def test_diff_pieces_keep_every_character_and_bound_long_texts() -> None:
    old, new = "one two  three\nfour", "one 2  three\nfour five"
    pieces = diff(old, new)
    assert "".join(text for kind, text in pieces if kind != "ins") == old
    assert "".join(text for kind, text in pieces if kind != "del") == new
    long_old, long_new = "word " * 20_000, "word " * 19_999 + "last "
    pieces = diff(long_old, long_new)  # line by line beyond MAX_WORDS: one line each here
    assert "".join(text for kind, text in pieces if kind != "ins") == long_old
