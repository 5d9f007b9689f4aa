"""Issue 21's studio pages in headless Chromium: lists that fit 1280 px, the schema map drawn
by mermaid, migrations, queries, the SQL console, and the dark theme remembered.

Screenshots of each new page at 1280x800 and 1920x1080 go to artifacts/ (git-ignored); the
ones in docs/screenshots/ were taken by this test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from coach_db.tools.roles.console import drop, provision
from tests.factories import make_message, make_scenario, make_session, make_user
from tests.processes import needs, subprocess_env
from tests.studio import STAFF_PASSWORD, make_staff
from tests.test_studio_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    admin_server,
)
from tests.test_studio_sql_console import _as

# First CI pass only: what the browser shows does not depend on the test servers.
pytestmark = [needs(NO_CHROMIUM), pytest.mark.once]
LISTS = ("user", "scenario", "conversationsession", "message")
NEW_PAGES = ("schema", "migrations", "queries", "sql")
SIZES = ((1280, 800), (1920, 1080))


@pytest.fixture(scope="module")
async def console_role(database_url: str) -> Any:
    role, password = f"coach_console_browser_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    owner = await asyncpg.connect(database_url)
    try:
        await provision(owner, role, password)
        yield _as(database_url, role, password)
    finally:
        await drop(owner, role)
        await owner.close()


@pytest.fixture(scope="module")
def studio(
    database_url: str, redis_url: str, studio_settings: Any, console_role: str
) -> Iterator[str]:
    env = subprocess_env(
        database_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=studio_settings.redis_prefix,
        COACH_DB_CONSOLE_URL=console_role,
    )
    with admin_server(env, "studio-views-server.log") as url:
        yield url


async def _rows_with_long_values() -> None:
    """Rows like the newcomer's: long names, e-mails and model ids."""
    long_name = "Negotiating a salary rise after a difficult annual review meeting"
    scenario = await make_scenario(
        name=long_name,
        partner_model="claude-sonnet-4-5-20250929-extended",
        coach_model="claude-haiku-4-5-20251001-extended",
    )
    user = await make_user(
        email="a.very.long.address.for.a.learner@subdomain.example.com",
        username="Alexandra Konstantinopoulou-Fitzgerald",
    )
    session = await make_session(user=user, scenario=scenario)
    await make_message(session=session, content="Hello " * 80)


async def _signed_in(browser: Any, url: str, email: str, width: int, height: int) -> Any:
    page = await browser.new_page(viewport={"width": width, "height": height})
    page.failures = []
    page.on("pageerror", lambda e: page.failures.append(str(e)))
    page.on("console", lambda m: page.failures.append(m.text) if m.type == "error" else None)
    page.on(
        "response",
        lambda r: page.failures.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    await page.goto(f"{url}/admin/login")
    await page.fill("#email", email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}/admin/")
    return page


async def test_new_pages_lists_that_fit_and_the_dark_theme(studio: str) -> None:
    from playwright.async_api import async_playwright

    admin = await make_staff(username="Sam Staff-Administrator")
    await _rows_with_long_values()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        for width, height in SIZES:
            page = await _signed_in(browser, studio, admin.email, width, height)
            for resource in LISTS:
                await page.goto(f"{studio}/admin/{resource}/list")
                wide = await page.evaluate(
                    "[...document.querySelectorAll('.table-responsive')]"
                    ".map(e => e.scrollWidth - e.clientWidth)"
                )
                assert wide and max(wide) <= 0, (resource, width, wide)
                edit = page.locator("tbody tr >> nth=0 >> .studio-actions a")
                box = await edit.bounding_box()
                assert box is not None and box["x"] + box["width"] <= width, (resource, box)
            # The schema map at the first size (and dark, below): mermaid's first drawing of it
            # under the studio's stylesheet takes ~11 s of CPU here (1.4 s without tabler.css).
            if (width, height) == SIZES[0]:
                await page.goto(f"{studio}/admin/schema")
                svg = page.locator("#schema-map svg")
                await svg.wait_for(timeout=120_000)
                drawn = await svg.text_content() or ""
                for table in ("user", "scenario", "conversation_session", "message", "audit_event"):
                    assert table in drawn, table
                await page.screenshot(path=str(ARTIFACTS / f"studio-schema-{width}.png"))
            await page.goto(f"{studio}/admin/migrations")
            assert "Up to date" in await page.inner_text("#drift")
            await page.screenshot(path=str(ARTIFACTS / f"studio-migrations-{width}.png"))
            await page.goto(f"{studio}/admin/queries")
            await page.screenshot(path=str(ARTIFACTS / f"studio-queries-{width}.png"))
            await page.goto(f"{studio}/admin/sql")
            await page.fill("#sql", 'SELECT id, email, username, role FROM "user" ORDER BY id')
            await page.click("button:has-text('Run')")
            await page.wait_for_selector("#console-result")
            assert admin.email in await page.inner_text("#console-result")
            await page.screenshot(path=str(ARTIFACTS / f"studio-sql-{width}.png"))
            assert page.failures == [], page.failures
            await page.fill("#sql", 'SELECT password_hash FROM "user"')
            await page.click("button:has-text('Run')")
            assert "permission denied" in await page.inner_text("#console-error")
            await page.screenshot(path=str(ARTIFACTS / f"studio-sql-refused-{width}.png"))
            page.failures.clear()  # the refused statement's page is a 400, as it should be
            await page.goto(f"{studio}/admin/user/list")
            await page.screenshot(path=str(ARTIFACTS / f"studio-users-{width}.png"))
            assert page.failures == [], page.failures
            await page.close()

        # The dark theme: a toggle, remembered by the browser across pages.
        page = await _signed_in(browser, studio, admin.email, 1280, 800)
        assert await page.evaluate("document.documentElement.dataset.bsTheme") == "light"
        await page.click("#theme-toggle")
        await page.goto(f"{studio}/admin/schema")
        assert await page.evaluate("document.documentElement.dataset.bsTheme") == "dark"
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(255, 255, 255)"
        await page.locator("#schema-map svg").wait_for(timeout=120_000)
        await page.screenshot(path=str(ARTIFACTS / "studio-schema-dark-1280.png"))
        await page.goto(f"{studio}/admin/conversationsession/list")
        await page.screenshot(path=str(ARTIFACTS / "studio-sessions-dark-1280.png"))
        await browser.close()
