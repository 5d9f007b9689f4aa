"""The studio in a real browser: headless Chromium against `python -m admin` on 127.0.0.1.

Signs in, opens a user, follows to their session and its transcript, edits a scenario, and
saves screenshots under artifacts/ (git-ignored). Every request must stay on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from coach_db import MessageRole, Scenario, SessionStatus, StaffRole
from tests.conftest import ROOT
from tests.factories import backfill, make_message, make_scenario, make_session, make_user
from tests.processes import free_port, needs, subprocess_env
from tests.studio import STAFF_PASSWORD, make_staff

# Debian's chromium (COACH_DB_TEST_CHROMIUM moves it: tests/test_suite.py points it at nothing).
CHROMIUM = Path(os.environ.get("COACH_DB_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


NO_CHROMIUM = (
    None if CHROMIUM.exists() else f"{CHROMIUM} is not installed (apt-get install chromium)"
)
# Skipped on a developer's machine without chromium; under CI (CI=true) that is a failure.
pytestmark = needs(NO_CHROMIUM)


def test_chromium_is_installed_so_the_browser_test_runs() -> None:
    assert NO_CHROMIUM is None, f"CI must run the browser test: {NO_CHROMIUM}"


@pytest.fixture(scope="module")
def studio_url(database_url: str, redis_url: str, studio_settings: Any) -> Iterator[str]:
    """`python -m admin` on a free port, as a developer starts it (assets installed if missing)."""
    env = subprocess_env(
        database_url, REDIS_URL=redis_url, REDIS_PREFIX=studio_settings.redis_prefix
    )
    with admin_server(env, "studio-server.log") as url:
        yield url


@contextmanager
def admin_server(env: dict[str, str], log_name: str) -> Iterator[str]:
    """`python -m admin` on a free port, its output in artifacts/`log_name`; its base URL."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / log_name).open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "admin", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # the first run may install the assets
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"python -m admin exited: see {ARTIFACTS / log_name}")
            try:
                if httpx.get(f"{url}/admin/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the studio did not start within 120 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
async def page(studio_url: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        page.outside = []  # requests that tried to leave 127.0.0.1
        page.failures = []  # responses >= 400 and console errors
        page.dialogs = []  # an alert() here would be XSS

        async def keep_local(route: Any) -> None:
            if route.request.url.startswith(studio_url + "/"):
                await route.continue_()
            else:
                page.outside.append(route.request.url)
                await route.abort()

        await page.route("**/*", keep_local)
        page.on(
            "response",
            lambda r: page.failures.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        page.on("console", lambda m: page.failures.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        yield page
        await browser.close()


async def shot(page: Any, name: str) -> None:
    # The viewport, not full_page: tabler's sidebar is position:fixed and would look cut off.
    await page.screenshot(path=str(ARTIFACTS / f"studio-{name}.png"))


async def assert_styled(page: Any) -> None:
    """tabler's CSS and the icon font are loaded from the studio itself."""
    font = await page.evaluate(
        "getComputedStyle(document.querySelector('.ti'), '::before').fontFamily"
    )
    assert "tabler-icons" in font
    assert await page.evaluate("document.fonts.check('16px tabler-icons')")
    radius = await page.evaluate("getComputedStyle(document.querySelector('.card')).borderRadius")
    assert radius not in ("", "0px")  # an unstyled card has square corners


async def test_sign_in_browse_a_user_to_the_transcript_and_edit_a_scenario(
    page: Any, studio_url: str
) -> None:
    staff = await make_staff(username="Sam Staff")
    learner = await make_user(username="Lee Learner", email="lee@example.com")
    scenario = await make_scenario(name="Asking for a raise", slug="asking-for-a-raise")
    start = datetime.now(UTC) - timedelta(hours=1)
    session = await make_session(
        user=learner,
        scenario=scenario,
        status=SessionStatus.COMPLETED,
        started_at=start,
        ended_at=start + timedelta(seconds=754),  # the database derives the 12:34 duration
    )
    async with backfill():  # history of a session that has ended
        await make_message(
            session=session,
            role=MessageRole.USER,
            content="I'd like to talk about my salary.",
            timestamp=start + timedelta(seconds=5),
        )
        await make_message(
            session=session,
            role=MessageRole.PARTNER,
            content="<script>alert('xss')</script> Sure, what did you have in mind?",
            metadata={"tokens": 31, "model": "claude-sonnet-4-5"},
            timestamp=start + timedelta(seconds=20),
        )
        await make_message(
            session=session,
            role=MessageRole.COACH,
            content="Good opening: clear and calm.",
            timestamp=start + timedelta(seconds=30),
        )

    await page.goto(f"{studio_url}/admin/")
    assert page.url.endswith("/admin/login?next=/admin/")
    await assert_styled(page)
    await shot(page, "1-sign-in")
    await page.fill("#email", staff.email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{studio_url}/admin/")
    assert await page.text_content("#stat-users") == "2"
    await assert_styled(page)
    await shot(page, "2-dashboard")

    await page.click("text=Users")
    await page.click(f"tr:has-text('{learner.email}') >> text=Edit")
    await page.wait_for_url(f"**/admin/user/update/{learner.pk}")
    await shot(page, "3-user")
    await page.click("text=Sessions (1)")
    await page.wait_for_url(f"**/admin/conversationsession/list?user_id={learner.pk}")
    await shot(page, "4-sessions-of-user")
    await page.click(f"a[href='/admin/conversationsession/transcript/{session.pk}'] >> nth=0")
    await page.wait_for_url(f"**/transcript/{session.pk}")
    roles = await page.eval_on_selector_all(
        "#transcript [data-role]", "els => els.map(e => e.dataset.role)"
    )
    assert roles == ["user", "partner", "coach"]
    assert "<script>alert('xss')</script>" in await page.inner_text("#transcript")
    await page.click("text=Metadata")
    await shot(page, "5-transcript")

    await page.click("text=Scenarios")
    await page.click(f"tr:has-text('{scenario.name}') >> text=Edit")
    await page.fill("input[name=name]", "Asking for a raise, politely")
    await page.uncheck("input[name=is_active]")
    await page.click("button[name=save]")
    await page.wait_for_selector("text=Saved.")
    await shot(page, "6-scenario-saved")
    await scenario.refresh_from_db()
    assert scenario.name == "Asking for a raise, politely" and not scenario.is_active

    message = await session.messages.all().order_by("id").offset(1).first()
    await page.goto(f"{studio_url}/admin/message/update/{message.pk}")
    await page.wait_for_selector(".jsoneditor")  # the JSON editor loaded from the studio
    await shot(page, "7-message-json-editor")
    await page.fill("input[name=session_id]", "lee@")  # the autocomplete: /admin/lookup/...
    await page.wait_for_selector(
        "#options-session_id option:has-text('lee@example.com')", state="attached"
    )
    labels = await page.eval_on_selector_all(
        "#options-session_id option", "els => els.map(e => e.textContent)"
    )
    assert labels == [f"Session {session.pk} (completed) · lee@example.com"]

    # Keyset pages: first / previous / next / last, no page numbers.
    await page.goto(f"{studio_url}/admin/message/list?page_size=2")
    assert await page.locator("a.page-link[rel=next]").count() == 1
    assert await page.locator("a.page-link[rel=prev]").count() == 0
    await page.click("a.page-link[rel=next]")
    await page.wait_for_url("**after=*")
    assert await page.locator("tbody tr").count() == 1  # the third of three messages
    assert await page.locator("a.page-link[rel=next]").count() == 0
    await shot(page, "8-keyset-pager")
    await page.click("a.page-link[rel=first]")
    await page.wait_for_selector("a.page-link[rel=last]")
    assert await page.locator("tbody tr").count() == 2

    assert page.outside == []
    assert page.failures == []
    assert page.dialogs == []
    assert await Scenario.filter(pk=scenario.pk).exists()


async def test_at_1400_px_long_lists_fit_the_sidebar_reaches_the_bottom_and_no_favicon_404(
    page: Any, studio_url: str
) -> None:
    """The messages list with long rows: its timestamp column and row actions stay reachable
    (the card scrolls sideways, the page does not), the dark sidebar runs down the whole page,
    and /favicon.ico exists. Screenshots: artifacts/studio-8-*.png."""
    staff = await make_staff(username="Wide Lister")
    session = await make_session(status=SessionStatus.ACTIVE)
    for i in range(60):
        await make_message(
            session=session,
            role=MessageRole.USER if i % 2 else MessageRole.PARTNER,
            content=f"Message {i}: " + "a rather long line that fills its column " * 4,
            metadata={"model": "claude-sonnet-4-5", "tokens": 100 + i, "note": "x" * 60},
        )
    await page.goto(f"{studio_url}/admin/login")
    await page.fill("#email", staff.email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{studio_url}/admin/")
    await page.goto(f"{studio_url}/admin/message/list")
    await shot(page, "8-messages-list")
    layout = await page.evaluate(
        r"""() => {
        const table = document.querySelector('table.datatable');
        const scroller = table.closest('.table-responsive');
        const row = table.querySelector('tbody tr:last-child');
        const stamp = [...row.cells].find(td => /^\d{4}-\d\d-\d\d\s\d\d:\d\d/.test(td.innerText));
        return {
            pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
            scrollerRight: scroller.getBoundingClientRect().right,
            lastCellRight: row.cells[row.cells.length - 1].getBoundingClientRect().right,
            stampLines: (() => {
                const range = document.createRange();
                range.selectNodeContents(stamp);
                return range.getClientRects().length;
            })(),
            width: window.innerWidth,
        };
    }"""
    )
    assert layout["pageOverflow"] <= 0, layout  # the page itself never scrolls sideways
    assert layout["scrollerRight"] <= layout["width"], layout  # the card ends on screen ...
    # ... and its last column (the row actions) too, without scrolling: long text wraps.
    assert layout["lastCellRight"] <= layout["scrollerRight"] + 1, layout
    assert layout["stampLines"] == 1, layout  # the timestamp itself never wraps

    sidebar = await page.evaluate(
        """() => {
        // 'instant': tabler's smooth scrolling would measure (and shoot) mid-way.
        window.scrollTo({top: document.documentElement.scrollHeight, behavior: 'instant'});
        const rect = document.querySelector('aside.navbar-vertical').getBoundingClientRect();
        return {bottom: rect.bottom, height: window.innerHeight,
                long: document.documentElement.scrollHeight > window.innerHeight + 500};
    }"""
    )
    assert sidebar["long"], sidebar  # the page is long enough to show it
    assert sidebar["bottom"] >= sidebar["height"] - 1, sidebar
    await shot(page, "8-messages-list-bottom")

    favicon = await page.request.get(f"{studio_url}/favicon.ico")
    assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/")
    assert page.failures == []


async def sign_in_page(page: Any, studio_url: str, email: str) -> None:
    await page.context.clear_cookies()
    await page.goto(f"{studio_url}/admin/login")
    await page.fill("#email", email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{studio_url}/admin/")


async def test_an_editor_changes_a_prompt_and_compares_versions_a_viewer_reads_only(
    page: Any, studio_url: str
) -> None:
    editor = await make_staff(username="Eddie Editor", role=StaffRole.EDITOR)
    viewer = await make_staff(username="Vera Viewer", role=StaffRole.VIEWER)
    scenario = await make_scenario(
        name="Saying no to overtime",
        slug="saying-no-to-overtime",
        coach_system_prompt="Point out when the user apologises too much.",
    )

    await sign_in_page(page, studio_url, editor.email)
    await page.goto(f"{studio_url}/admin/scenario/update/{scenario.pk}")
    await page.fill(
        "textarea[name=coach_system_prompt]",
        "Point out when the user apologises, and suggest one firm sentence instead.",
    )
    await page.click("button[name=save]")
    await page.wait_for_selector("text=Saved.")
    await page.click("text=Prompt versions (current: 2)")
    await page.wait_for_url(f"**/admin/scenario/{scenario.pk}/versions")
    await page.click("#versions >> text=Changes")
    await page.wait_for_url("**/versions/2?against=1")
    assert "too much." in " ".join(await page.locator(".studio-diff del").all_inner_texts())
    assert "firm" in " ".join(await page.locator(".studio-diff ins").all_inner_texts())
    await shot(page, "11-version-diff")

    await sign_in_page(page, studio_url, viewer.email)
    await page.goto(f"{studio_url}/admin/scenario/update/{scenario.pk}")
    assert await page.is_disabled("textarea[name=coach_system_prompt]")
    assert await page.is_disabled("input[name=name]")
    assert await page.locator("button[name=save]").count() == 0
    await page.wait_for_selector("text=Read only")
    await shot(page, "12-viewer-read-only-form")
    await page.goto(f"{studio_url}/admin/scenario/list")
    assert await page.locator("a[href='/admin/scenario/create']").count() == 0
    await shot(page, "13-viewer-list")

    assert page.outside == []
    assert page.failures == []
    assert page.dialogs == []
