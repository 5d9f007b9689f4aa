"""Each shim of studio/compat.py, and the studio's start-up: one test per upstream breakage."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from asgi_lifespan import LifespanManager
from fastapi_admin.i18n import _
from fastapi_admin.template import templates
from fastapi_admin.widgets import Widget, displays, inputs
from markupsafe import Markup
from starlette.requests import Request

import coach_db
from coach_db import User
from coach_db.apps.studio import assets
from coach_db.apps.studio.app import RedisUnreachable, create_app
from tests.factories import make_message, make_user
from tests.studio import client_for, post, studio_of

ROOT = Path(__file__).resolve().parent.parent


def a_request() -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    )


def test_aioredis_is_redis_asyncio_so_fastapi_admin_imports() -> None:
    """fastapi-admin#138, #181: aioredis 2.0.1 fails to import on Python 3.11."""
    import aioredis
    import fastapi_admin.app

    assert aioredis is redis.asyncio
    assert fastapi_admin.app.FastAPIAdmin


def test_template_response_accepts_fastapi_admins_old_signature() -> None:
    """Starlette 1.x dropped TemplateResponse(name, context); fastapi-admin still calls it."""
    request = a_request()
    request.scope["app"] = create_app(connect_db=False)
    old = templates.TemplateResponse(
        "components/select.html", context={"request": request}, status_code=201
    )
    new = templates.TemplateResponse(request, "components/select.html", {}, 201)
    assert old.status_code == new.status_code == 201
    assert old.body == new.body


def test_labels_are_english_not_message_ids() -> None:
    """fastapi-admin#151, #119: the wheel ships .po files only; we compile them."""
    assert _("sign_in") == "Sign in"
    assert _("delete_selected") == "Delete Selected"
    assert _("Showing %(from)s to %(to)s of %(total)s entries") != ""


async def test_widget_output_is_escaped_unless_it_comes_from_a_template() -> None:
    """fastapi-admin#182: list cells are rendered with |safe."""
    request = a_request()
    raw = await Widget().render(request, "<script>alert(1)</script>")
    assert raw == "&lt;script&gt;alert(1)&lt;/script&gt;"
    shown = await displays.Display().render(request, "<b>x</b>")
    assert "<b>" not in shown
    templated = await displays.Boolean().render(request, True)
    assert isinstance(templated, Markup) and "<span" in templated


async def test_empty_nullable_input_is_null() -> None:
    """An empty nullable number or date-time crashed fastapi-admin's save (int(''))."""
    request = a_request()
    assert await inputs.Number(null=True).parse_value(request, "") is None
    assert await inputs.Input(null=True).parse_value(request, "") is None
    assert await inputs.Number(null=False).parse_value(request, "") == ""  # required stays required


async def test_update_of_a_missing_row_is_404_not_500(staff: Any) -> None:
    assert (await staff.get("/admin/user/update/424242")).status_code == 404
    # With the CSRF token, so the POST reaches the route (without one it stops at CSRF: 403).
    edit = {"email": "new@example.com", "username": "New", "is_staff": "on", "role": "viewer"}
    assert (await post(staff, "/admin/user/update/424242", edit)).status_code == 404
    assert not await User.exists(email="new@example.com")


async def test_json_input_never_writes_stored_text_into_a_script(staff: Any) -> None:
    """Upstream's json.html put the value unescaped into an attribute and a <script>."""
    message = await make_message(
        metadata={"x": "</script><script>alert(1)</script>", "y": "' onfocus='x"}
    )
    html = (await staff.get(f"/admin/message/update/{message.pk}")).text
    assert "</script><script>alert(1)" not in html
    assert "' onfocus='x" not in html
    text = re.search(r'<textarea id="json-metadata"[^>]*>(.*?)</textarea>', html, re.S)
    assert text is not None
    unescaped = (
        text[1]
        .replace("&#34;", '"')
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
    )
    assert json.loads(unescaped) == message.metadata


async def test_two_apps_do_not_share_resources() -> None:
    """fastapi-admin keeps its resources on the class; each studio app has its own."""
    first, second = studio_of(create_app(connect_db=False)), studio_of(create_app(connect_db=False))
    assert len(first.resources) == len(second.resources) == 4
    assert first.resources is not second.resources


async def test_lifespan_opens_the_database_for_requests_in_other_tasks(
    studio_settings: Any, database_url: str
) -> None:
    """Tortoise 1.x: a pool opened in the lifespan must serve requests run in other tasks."""
    user = await make_user()
    app = create_app(studio_settings, connect_db=True)
    try:
        async with LifespanManager(app), client_for(app) as client:
            page = await client.get("/admin/login")
            assert page.status_code == 200
    finally:
        await coach_db.init_db(database_url)  # the suite's own connection again
    assert await coach_db.User.exists(pk=user.pk)


async def test_unreachable_redis_fails_start_up_with_a_clear_message(studio_settings: Any) -> None:
    settings = studio_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(settings, connect_db=False)
    with pytest.raises(RedisUnreachable, match=r"Can't reach Redis at redis://127\.0\.0\.1:1/0"):
        async with LifespanManager(app):
            pass


def test_lock_file_pins_versions_and_hashes_without_download_addresses() -> None:
    lock = json.loads((ROOT / "admin" / "package-lock.json").read_text())
    package = json.loads((ROOT / "admin" / "package.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), name  # exact, never @latest
    packages = {k: v for k, v in lock["packages"].items() if k}
    assert packages and all("integrity" in v and "resolved" not in v for v in packages.values())


def test_templates_load_nothing_from_a_cdn() -> None:
    templates = sorted((ROOT / "coach_db" / "apps" / "studio" / "templates").rglob("*.html"))
    assert len(templates) > 10  # the folder moved once, and this loop then checked nothing
    for template in templates:
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", template.read_text()), template


def test_missing_assets_are_listed_with_the_install_command(tmp_path: Path) -> None:
    absent = assets.missing(tmp_path)
    assert "tabler/css/tabler.min.css" in absent
    message = str(assets.AssetsMissing(absent))
    assert "uv run python -m admin.assets" in message


async def test_missing_assets_show_a_banner_and_a_helpful_404(
    anonymous: Any, studio_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        studio_of(studio_app).state, "assets_missing", ["@tabler/core/dist/css/x.css"]
    )
    page = await anonymous.get("/admin/login")
    assert "The studio's CSS/JS are not installed" in page.text
    assert "uv run python -m admin.assets" in page.text
    response = await anonymous.get("/admin/static/tabler/css/no-such-file.css")
    assert response.status_code == 404 and "uv run python -m admin.assets" in response.text
