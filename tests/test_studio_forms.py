"""Studio forms: create, edit and delete every model with its widgets; bad input is a form
error (never a 500) and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coach_db import ConversationSession, Message, Scenario, SessionStatus, User
from coach_db.passwords import verify_password
from tests.factories import make_message, make_scenario, make_session, make_user, unique
from tests.studio import delete, post


def scenario_form(**overrides: Any) -> dict[str, Any]:
    slug = unique("form")
    return {
        "name": "Saying no",
        "slug": slug,
        "description": "Decline a request.",
        "partner_persona": "A pushy colleague.",
        "partner_system_prompt": "Push.",
        "coach_system_prompt": "Coach.",
        "partner_model": "claude-sonnet-4-5",
        "coach_model": "claude-haiku-4-5",
        "is_active": "on",
        "save": "",
        **overrides,
    }


async def test_forms_have_the_right_widgets(staff: Any) -> None:
    session = await make_session()
    message = await make_message(session=session)
    html = (await staff.get(f"/admin/message/update/{message.pk}")).text
    assert 'id="json-metadata"' in html and "jsoneditor.min.js" in html  # JSON editor
    assert '<select class="form-select" name="role"' in html  # enum select
    assert 'data-lookup="' in html and 'list="options-session_id"' in html  # foreign key
    html = (await staff.get(f"/admin/conversationsession/update/{session.pk}")).text
    assert 'type="datetime-local"' in html and 'name="ended_at"' in html  # date-time picker
    assert 'name="user_id"' in html and 'name="scenario_id"' in html and 'name="status"' in html
    html = (await staff.get("/admin/scenario/create")).text
    assert (
        'class="form-check-input" type="checkbox"' in html and 'name="is_active"' in html
    )  # switch
    assert "<textarea" in html


async def test_create_edit_and_delete_a_scenario(staff: Any) -> None:
    form = scenario_form()
    created = await post(staff, "/admin/scenario/create", form)
    assert created.status_code == 303
    scenario = await Scenario.get(slug=form["slug"])
    assert created.headers["location"] == f"/admin/scenario/update/{scenario.pk}?saved=1"
    assert scenario.is_active and scenario.name == "Saying no"

    edit = await staff.get(created.headers["location"])
    assert "Saved." in edit.text and "Saying no" in edit.text
    changed = scenario_form(slug=form["slug"], name="Saying no kindly", is_active=None)
    changed = {k: v for k, v in changed.items() if v is not None}  # an unticked switch is absent
    updated = await post(staff, f"/admin/scenario/update/{scenario.pk}", changed)
    assert updated.status_code == 303
    await scenario.refresh_from_db()
    assert scenario.name == "Saying no kindly" and not scenario.is_active

    removed = await delete(staff, f"/admin/scenario/delete/{scenario.pk}")
    assert removed.status_code == 200 and removed.json() == {"deleted": 1}
    assert not await Scenario.exists(pk=scenario.pk)


async def test_create_a_user_with_a_password_that_is_hashed(staff: Any) -> None:
    response = await post(
        staff,
        "/admin/user/create",
        {
            "email": "New.Person@Example.com",
            "username": "New person",
            "password": "a long password",
            "save": "",
        },
    )
    assert response.status_code == 303
    user = await User.get(email="new.person@example.com")
    assert user.password_hash and user.password_hash.startswith("$argon2")
    assert verify_password("a long password", user.password_hash)
    assert not user.is_staff


async def test_editing_a_user_keeps_the_password_unless_a_new_one_is_given(staff: Any) -> None:
    user = await make_user()
    await post(
        staff,
        f"/admin/user/update/{user.pk}",
        {"email": user.email, "username": "Renamed", "password": "new password!"},
    )
    await user.refresh_from_db()
    assert verify_password("new password!", user.password_hash)
    before = user.password_hash
    await post(
        staff,
        f"/admin/user/update/{user.pk}",
        {
            "email": user.email,
            "username": "Again",
            "password": "",
            "is_staff": "on",
            "role": "admin",
        },
    )
    await user.refresh_from_db()
    assert user.password_hash == before and user.username == "Again" and user.is_staff


async def test_create_and_edit_a_session_clearing_nullable_fields(staff: Any) -> None:
    user, scenario = await make_user(), await make_scenario()
    response = await post(
        staff,
        "/admin/conversationsession/create",
        {
            "user_id": user.pk,
            "scenario_id": scenario.pk,
            "status": "completed",
            "ended_at": "2030-01-01T10:30:00",
        },
    )
    assert response.status_code == 303
    session = await ConversationSession.get(user_id=user.pk)
    assert session.status == SessionStatus.COMPLETED
    assert session.ended_at == datetime(2030, 1, 1, 10, 30, tzinfo=UTC)
    # The database derives the duration from the two times.
    assert session.duration_seconds == int((session.ended_at - session.started_at).total_seconds())
    # fastapi-admin: an empty nullable date-time or number crashed, and could never become NULL.
    cleared = await post(
        staff,
        f"/admin/conversationsession/update/{session.pk}",
        {
            "user_id": user.pk,
            "scenario_id": scenario.pk,
            "status": "active",
            "ended_at": "",
        },
    )
    assert cleared.status_code == 303
    await session.refresh_from_db()
    assert session.ended_at is None and session.duration_seconds is None


async def test_create_and_edit_a_message_with_json_metadata(staff: Any) -> None:
    session = await make_session()
    response = await post(
        staff,
        "/admin/message/create",
        {
            "session_id": session.pk,
            "role": "partner",
            "content": "Hello",
            "audio_url": "",
            "metadata": '{"tokens": 12, "model": "claude"}',
            "save_and_add_another": "",
        },
    )
    assert (
        response.status_code == 303
        and "/admin/message/create?saved=" in response.headers["location"]
    )
    message = await Message.get(session_id=session.pk)
    assert message.metadata == {"tokens": 12, "model": "claude"} and message.audio_url is None
    edit = await staff.get(f"/admin/message/update/{message.pk}")
    assert "&#34;tokens&#34;: 12" in edit.text


async def test_bulk_delete(staff: Any) -> None:
    users = [await make_user() for _ in range(3)]
    ids = ",".join(str(u.pk) for u in users[:2])
    response = await delete(staff, f"/admin/user/delete?ids={ids}")
    assert response.status_code == 200 and response.json() == {"deleted": 2}
    assert await User.filter(pk__in=[u.pk for u in users]).count() == 1
    assert (await delete(staff, "/admin/user/delete?ids=1,abc")).status_code == 400


async def test_deleting_a_scenario_in_use_is_refused_with_a_message(staff: Any) -> None:
    session = await make_session()
    response = await delete(staff, f"/admin/scenario/delete/{session.scenario_id}")
    # PostgreSQL 15 reports the RESTRICT key as foreign_key_violation, 18 as restrict_violation.
    assert response.status_code == 409
    assert response.json()["error"].startswith(
        "Not deleted: other rows still point at this Scenario."
    )
    assert await Scenario.exists(pk=session.scenario_id)
    assert (await delete(staff, "/admin/scenario/delete/999999")).status_code == 404


async def test_deleting_a_user_deletes_their_sessions_and_messages(staff: Any) -> None:
    message = await make_message()
    session = await ConversationSession.get(pk=message.session_id)
    assert (await delete(staff, f"/admin/user/delete/{session.user_id}")).status_code == 200
    assert not await Message.exists(pk=message.pk)


BAD_SCENARIOS = [
    ({"slug": "Not A Slug"}, "Slug"),
    ({"slug": "double--hyphen"}, "Slug"),
    ({"name": "   "}, "Name"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_SCENARIOS)
async def test_invalid_scenario_is_a_form_error(
    staff: Any, overrides: dict[str, str], field: str
) -> None:
    response = await post(staff, "/admin/scenario/create", scenario_form(**overrides))
    assert response.status_code == 422
    assert "Not saved" in response.text and f"<li>{field}" in response.text
    assert (
        overrides[next(iter(overrides))].strip() in response.text or field == "Name"
    )  # typed value kept
    assert await Scenario.all().count() == 0


async def test_duplicate_slug_is_a_form_error_and_changes_nothing(staff: Any) -> None:
    taken = await make_scenario()
    other = await make_scenario(name="Other")
    response = await post(
        staff, f"/admin/scenario/update/{other.pk}", scenario_form(slug=taken.slug, name="Changed")
    )
    assert response.status_code == 422
    assert "Slug: another row already has this value." in response.text
    await other.refresh_from_db()
    assert other.name == "Other"


async def test_duplicate_email_is_a_form_error_case_insensitively(staff: Any) -> None:
    await make_user(email="taken@example.com")
    response = await post(
        staff, "/admin/user/create", {"email": "TAKEN@example.com", "username": "Copy"}
    )
    assert response.status_code == 422
    assert "Email: another row already has this value." in response.text
    assert not await User.filter(username="Copy").exists()


async def test_invalid_email_and_short_password_are_form_errors(staff: Any) -> None:
    response = await post(staff, "/admin/user/create", {"email": "not-an-email", "username": "X"})
    assert response.status_code == 422 and "Email:" in response.text
    response = await post(
        staff,
        "/admin/user/create",
        {"email": "ok@example.com", "username": "X", "password": "short"},
    )
    assert response.status_code == 422 and "at least 8 characters" in response.text
    assert "short" not in response.text.split("Not saved")[1].split("</form>")[0].replace(
        "at least 8", ""
    )
    assert not await User.filter(username="X").exists()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
    ],
)
async def test_invalid_json_metadata_is_a_form_error(
    staff: Any, metadata: str, message: str
) -> None:
    stored = await make_message(metadata={"kept": True})
    response = await post(
        staff,
        f"/admin/message/update/{stored.pk}",
        {
            "session_id": stored.session_id,
            "role": "user",
            "content": "Changed",
            "metadata": metadata,
        },
    )
    assert response.status_code == 422 and message in response.text
    await stored.refresh_from_db()
    assert stored.metadata == {"kept": True} and stored.content != "Changed"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status", "paused", "unknown value"),
        ("user_id", "999999", "there is no row"),
        ("scenario_id", "abc", "type a row number (#, digits 0-9)"),
        ("ended_at", "yesterday", "not a date and time"),
        ("ended_at", "2030-01-01T00:00:00", "only a completed or abandoned session has an end"),
        ("ended_at", "2000-01-01T00:00:00", "may not be before the start"),
    ],
)
async def test_bad_session_values_are_form_errors(
    staff: Any, field: str, value: str, message: str
) -> None:
    session = await make_session()
    form = {
        "user_id": session.user_id,
        "scenario_id": session.scenario_id,
        "status": "active",
        "ended_at": "",
        field: value,
    }
    response = await post(staff, f"/admin/conversationsession/update/{session.pk}", form)
    assert response.status_code == 422, response.text[:300]
    assert message in response.text
    await session.refresh_from_db()
    assert session.ended_at is None
    assert session.status == SessionStatus.ACTIVE


async def test_session_counters_are_not_editable_in_the_form(staff: Any) -> None:
    session = await make_session()
    await make_message(session=session)
    form = {
        "user_id": session.user_id,
        "scenario_id": session.scenario_id,
        "status": "active",
        "ended_at": "",
        "total_messages": "99",
        "duration_seconds": "5",
    }
    response = await post(staff, f"/admin/conversationsession/update/{session.pk}", form)
    assert response.status_code == 303
    await session.refresh_from_db()
    assert session.total_messages == 1 and session.duration_seconds is None


async def test_studio_message_create_and_delete_keep_the_session_counter(staff: Any) -> None:
    """The counter triggers hold for the studio's own create, delete and bulk delete routes."""
    session = await make_session()
    for content in ("one", "two", "three"):
        response = await post(
            staff,
            "/admin/message/create",
            {"session_id": session.pk, "role": "user", "content": content, "metadata": "{}"},
        )
        assert response.status_code == 303, response.text[:300]
    await session.refresh_from_db()
    assert session.total_messages == 3 == await Message.filter(session_id=session.pk).count()
    first, second, third = await Message.filter(session_id=session.pk).order_by("id")
    assert (await delete(staff, f"/admin/message/delete/{first.pk}")).status_code == 200
    await session.refresh_from_db()
    assert session.total_messages == 2
    bulk = await delete(staff, f"/admin/message/delete?ids={second.pk},{third.pk}")
    assert bulk.status_code == 200, bulk.text[:300]
    await session.refresh_from_db()
    assert session.total_messages == 0 == await Message.filter(session_id=session.pk).count()


async def test_a_message_after_the_session_end_is_a_form_error(staff: Any) -> None:
    # The create form has no timestamp field: the database stamps the message now, after the
    # session's end (a posted timestamp would be ignored, so none is sent).
    session = await make_session(status=SessionStatus.COMPLETED)
    response = await post(
        staff,
        "/admin/message/create",
        {"session_id": session.pk, "role": "user", "content": "too late", "metadata": "{}"},
    )
    assert response.status_code == 422
    assert "no message may come after its end" in response.text
    assert await Message.filter(session_id=session.pk).count() == 0


async def test_unknown_role_on_create_changes_nothing(staff: Any) -> None:
    session = await make_session()
    response = await post(
        staff,
        "/admin/message/create",
        {"session_id": session.pk, "role": "narrator", "content": "Hi", "metadata": "{}"},
    )
    assert response.status_code == 422 and "Role: unknown value" in response.text
    assert not await Message.exists(session_id=session.pk)
