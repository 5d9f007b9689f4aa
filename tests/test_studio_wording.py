"""What the studio's pages say (issue 21): no role badge on learners, the audit trail's rows
named as people say them, and a session older than its prompt record says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from coach_db.models import AuditAction, AuditEvent
from tests.factories import make_scenario, make_session, make_user


async def test_a_learner_carries_no_role_badge_in_the_users_list(staff: Any) -> None:
    await make_user(email="learner@example.com", is_staff=False)
    page = (await staff.get("/admin/user/list")).text
    row = page[page.index(">learner@example.com<") :]
    row = row[: row.index("</tr>")]
    assert "Viewer" not in row and '-lt"></span>' not in row  # not even an empty badge
    staff_page = page
    assert ">Admin</span>" in staff_page  # staff keep theirs


async def test_the_audit_list_names_rows_as_people_say_them_with_a_link(staff: Any) -> None:
    session = await make_session()
    await AuditEvent.create(
        actor_id=staff.staff_user.pk,
        action=AuditAction.UPDATE,
        model="conversationsession",
        row_id=session.pk,
        changes={"status": ["active", "abandoned"]},
    )
    page = (await staff.get("/admin/audit")).text
    assert "conversationsession #" not in page
    link = f'href="/admin/conversationsession/history/{session.pk}">Session #{session.pk}</a>'
    assert link in page
    history = (await staff.get(f"/admin/conversationsession/history/{session.pk}")).text
    assert f"Session #{session.pk}" in history


async def test_a_session_older_than_its_prompt_record_says_recording_began_later(
    staff: Any, raw: asyncpg.Connection
) -> None:
    scenario = await make_scenario()
    old = await make_session(scenario=scenario, started_at=datetime.now(UTC) - timedelta(days=20))
    new = await make_session(scenario=scenario)
    before = (await staff.get(f"/admin/conversationsession/transcript/{old.pk}")).text
    assert "after this session started" in before and "migration 6" in before
    after = (await staff.get(f"/admin/conversationsession/transcript/{new.pk}")).text
    assert "after this session started" not in after
    form = (await staff.get(f"/admin/conversationsession/update/{old.pk}")).text
    assert "recorded after the session started" in form
