"""Studio roles (studio/roles.py): a viewer changes nothing, whatever route it tries; an editor
changes content but not accounts; a role change ends the user's sessions."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from coach_db import StaffRole, User
from coach_db.apps.studio.roles import ROLES, SELF_SERVICE, require_role
from tests.factories import make_message, make_scenario
from tests.studio import (
    client_for,
    csrf,
    make_staff,
    post,
    sign_in,
    studio_of,
    studio_routes,
)
from tests.test_studio_hostile import snapshot

RESOURCES = ("user", "scenario", "conversationsession", "message")


async def signed_in_as(app: Any, role: StaffRole) -> Any:
    """A client of `app` signed in through the form as a new staff user with `role`."""
    user = await make_staff(role=role)
    client = client_for(app)
    entered = await client.__aenter__()
    assert (await sign_in(entered, user.email)).status_code == 303
    entered.staff_user = user
    entered.exit = client
    return entered


@pytest.fixture
async def viewer(studio_app: Any) -> Any:
    client = await signed_in_as(studio_app, StaffRole.VIEWER)
    yield client
    await client.exit.__aexit__(None, None, None)


@pytest.fixture
async def editor(studio_app: Any) -> Any:
    client = await signed_in_as(studio_app, StaffRole.EDITOR)
    yield client
    await client.exit.__aexit__(None, None, None)


def message_scenario(message: Any) -> int:
    return int(message.session.scenario_id)


def state_changing_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, template) that is not a read, from the app itself: a new route is
    covered without editing this file. Only the self-service routes are left out."""
    return [
        (method, template)
        for method, template in studio_routes(app)
        if method not in ("GET", "HEAD", "OPTIONS") and template not in SELF_SERVICE
    ]


def concrete(template: str, resource: str, pk: int) -> str:
    return "/admin" + template.replace("{resource}", resource).replace("{pk}", str(pk))


async def test_a_viewer_is_refused_every_state_changing_route_with_403(
    viewer: Any, studio_app: Any, raw: asyncpg.Connection
) -> None:
    message = await make_message()
    ids = {
        "user": viewer.staff_user.pk,  # its own account too
        "scenario": message_scenario(message),
        "conversationsession": message.session_id,  # type: ignore[attr-defined]
        "message": message.pk,
    }
    routes = state_changing_routes(studio_app)
    assert ("POST", "/{resource}/update/{pk}") in routes  # the enumeration found the forms
    before = await snapshot(raw)
    token = await csrf(viewer)
    refused = []
    for method, template in routes:
        for resource in RESOURCES if "{resource}" in template else ("",):
            url = concrete(template, resource, ids.get(resource, 1))
            response = await viewer.request(
                method,
                url,
                params={"ids": str(ids.get(resource, 1))} if method == "DELETE" else None,
                headers={"X-CSRF-Token": token},
                data={"csrf_token": token, "username": "changed"} if method == "POST" else None,
            )
            assert response.status_code == 403, (method, url, response.status_code)
            assert "viewer" in response.text  # says why: the role
            refused.append((method, url))
    assert len(refused) == sum(
        len(RESOURCES) if "{resource}" in template else 1 for _, template in routes
    )
    assert await snapshot(raw) == before
    for resource in RESOURCES:  # the create form is refused too, not shown
        assert (await viewer.get(f"/admin/{resource}/create")).status_code == 403


async def test_a_viewer_sees_every_form_read_only_and_no_buttons_to_change(
    viewer: Any, raw: asyncpg.Connection
) -> None:
    message = await make_message()
    rows = {
        "user": viewer.staff_user.pk,
        "scenario": message_scenario(message),
        "conversationsession": message.session_id,  # type: ignore[attr-defined]
        "message": message.pk,
    }
    for resource, pk in rows.items():
        form = await viewer.get(f"/admin/{resource}/update/{pk}")
        assert form.status_code == 200
        assert "<fieldset disabled>" in form.text and "Read only" in form.text
        assert 'name="save"' not in form.text and "save_and_return" not in form.text
        listing = await viewer.get(f"/admin/{resource}/list")
        assert listing.status_code == 200
        assert f'href="/admin/{resource}/create"' not in listing.text
        assert "onAction(this)" not in listing.text and "onBulkAction(this)" not in listing.text
        assert f'href="/admin/{resource}/update/' in listing.text  # "View" opens the form


async def test_an_editor_changes_content_but_not_accounts(
    editor: Any, raw: asyncpg.Connection
) -> None:
    scenario_id = (await make_scenario()).pk
    scenario = await raw.fetchrow("SELECT * FROM scenario WHERE id = $1", scenario_id)
    assert scenario is not None
    names = ("name", "slug", "description", "partner_persona", "partner_system_prompt")
    edit = {k: str(scenario[k]) for k in (*names, "partner_model", "coach_model")}
    edit |= {"coach_system_prompt": "Edited by an editor.", "is_active": "on"}
    saved = await post(editor, f"/admin/scenario/update/{scenario_id}", edit)
    assert saved.status_code == 303
    assert (await editor.get("/admin/scenario/create")).status_code == 200
    me = editor.staff_user
    promote = {"email": me.email, "username": me.username, "is_staff": "on", "role": "admin"}
    refused = await post(editor, f"/admin/user/update/{me.pk}", promote)
    assert refused.status_code == 403 and "admin role" in refused.text
    assert (await User.get(pk=me.pk)).role == StaffRole.EDITOR
    form = await editor.get(f"/admin/user/update/{me.pk}")
    assert "<fieldset disabled>" in form.text


async def test_an_admin_sets_a_role_in_the_studio_and_that_users_sessions_end(
    studio_app: Any, staff: Any
) -> None:
    assert staff.staff_user.role == StaffRole.ADMIN
    viewer_client = await signed_in_as(studio_app, StaffRole.VIEWER)
    user = viewer_client.staff_user
    edit = {"email": user.email, "username": user.username, "is_staff": "on", "role": "editor"}
    assert (await post(staff, f"/admin/user/update/{user.pk}", edit)).status_code == 303
    assert (await User.get(pk=user.pk)).role == StaffRole.EDITOR
    response = await viewer_client.get("/admin/")
    assert response.status_code == 303 and "/admin/login" in response.headers["location"]
    await viewer_client.exit.__aexit__(None, None, None)


async def test_staff_switched_off_and_on_again_does_not_revive_old_sessions(
    studio_app: Any, raw: asyncpg.Connection
) -> None:
    """The known limit of the last session: is_staff off -> on with no request in between
    brought the old sessions back. credentials_version (bumped by the database) closes it."""
    client = await signed_in_as(studio_app, StaffRole.ADMIN)
    user = client.staff_user
    await raw.execute('UPDATE "user" SET is_staff = false WHERE id = $1', user.pk)
    await raw.execute('UPDATE "user" SET is_staff = true WHERE id = $1', user.pk)
    response = await client.get("/admin/")
    assert response.status_code == 303 and "/admin/login" in response.headers["location"]
    await client.exit.__aexit__(None, None, None)


async def test_credentials_version_is_bumped_by_the_database_only_for_credentials(
    raw: asyncpg.Connection,
) -> None:
    user = await make_staff(role=StaffRole.VIEWER)
    version = 'SELECT credentials_version FROM "user" WHERE id = $1'
    await raw.execute('UPDATE "user" SET username = $2 WHERE id = $1', user.pk, "Renamed")
    assert await raw.fetchval(version, user.pk) == 1
    await raw.execute('UPDATE "user" SET role = $2 WHERE id = $1', user.pk, "editor")
    assert await raw.fetchval(version, user.pk) == 2
    # A write of the column itself (a stale ORM object) cannot set it back.
    await raw.execute('UPDATE "user" SET credentials_version = 1 WHERE id = $1', user.pk)
    assert await raw.fetchval(version, user.pk) == 2
    with pytest.raises(asyncpg.CheckViolationError, match="user_role_valid"):
        await raw.execute('UPDATE "user" SET role = $2 WHERE id = $1', user.pk, "owner")


def _request(user: User | None) -> Request:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    request.state.admin = user
    return request


@pytest.mark.parametrize("have", ROLES)
@pytest.mark.parametrize("need", ROLES)
async def test_require_role_orders_viewer_editor_admin(have: str, need: str) -> None:
    user = User(email="x@example.com", username="x", is_staff=True, role=StaffRole(have))
    if ROLES.index(have) >= ROLES.index(need):
        assert await require_role(_request(user), need) is user
    else:
        with pytest.raises(HTTPException) as refused:
            await require_role(_request(user), need)
        assert refused.value.status_code == 403


async def test_require_role_without_a_user_or_with_a_bad_role_name() -> None:
    with pytest.raises(HTTPException) as refused:
        await require_role(_request(None), "viewer")
    assert refused.value.status_code == 401
    with pytest.raises(ValueError, match="unknown role"):
        await require_role(_request(None), "superuser")
    not_staff = User(email="x@example.com", username="x", is_staff=False, role=StaffRole.ADMIN)
    with pytest.raises(HTTPException):
        await require_role(_request(not_staff), "viewer")


def test_the_route_enumeration_sees_the_studio_apps_routes(studio_app: Any) -> None:
    assert studio_of(studio_app) is not None
    templates = {template for _, template in state_changing_routes(studio_app)}
    assert {"/{resource}/create", "/{resource}/update/{pk}", "/{resource}/delete/{pk}"} <= templates
    assert not re.search("login|logout|password", " ".join(templates))


async def test_the_sql_console_is_for_admins_only(viewer: Any, editor: Any, staff: Any) -> None:
    """Viewers and editors get 403 on the console's page and its form; an admin gets the page."""
    for client in (viewer, editor):
        assert (await client.get("/admin/sql")).status_code == 403
        assert (await post(client, "/admin/sql", {"sql": "SELECT 1"})).status_code == 403
    assert (await staff.get("/admin/sql")).status_code == 200
