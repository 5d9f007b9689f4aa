"""The studio's security headers, and cookies that belong to one studio of a host."""

from __future__ import annotations

from typing import Any

import httpx

from tests.studio import make_staff, sign_in, studio_with


def assert_protected(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    policy = {
        part.strip().split(" ", 1)[0]: part.strip()
        for part in headers["content-security-policy"].split(";")
    }
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["default-src"] == "default-src 'self'"
    assert policy["object-src"] == "object-src 'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


async def test_signed_in_pages_cannot_be_framed_and_are_not_stored(staff: Any) -> None:
    user = await make_staff()
    for url in ("/admin/", "/admin/user/list", f"/admin/user/update/{user.pk}", "/admin/password"):
        response = await staff.get(url)
        assert response.status_code == 200, url
        assert_protected(response)
        assert response.headers["cache-control"] == "no-store"


async def test_sign_in_and_error_pages_carry_the_headers_too(anonymous: Any) -> None:
    for url, status in [("/admin/login", 200), ("/admin/nowhere", 404), ("/admin/", 303)]:
        response = await anonymous.get(url)
        assert response.status_code == status
        assert_protected(response)
        assert response.headers["cache-control"] == "no-store"
    refused = await anonymous.post("/admin/login", data={"email": "x"})  # no CSRF token
    assert refused.status_code == 403
    assert_protected(refused)


async def test_the_pinned_assets_stay_cacheable(anonymous: Any) -> None:
    response = await anonymous.get("/admin/static/tabler/css/tabler.min.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_two_studios_on_one_host_do_not_sign_each_other_out(studio_settings: Any) -> None:
    """Browsers share cookies between the ports of a host: the names must differ."""
    first, second = await make_staff(), await make_staff()
    async with (
        studio_with(studio_settings, studio_port=5555) as app_a,
        studio_with(studio_settings, studio_port=5556) as app_b,
    ):
        by_port = {
            5555: httpx.ASGITransport(app=app_a),
            5556: httpx.ASGITransport(app=app_b),
        }

        class ByPort(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                return await by_port[request.url.port or 80].handle_async_request(request)

        async with httpx.AsyncClient(transport=ByPort()) as browser:
            a, b = "http://studio.test:5555", "http://studio.test:5556"
            browser.base_url = httpx.URL(a)
            assert (await sign_in(browser, first.email)).status_code == 303
            browser.base_url = httpx.URL(b)
            assert (await sign_in(browser, second.email)).status_code == 303
            page_a = await browser.get(f"{a}/admin/")
            page_b = await browser.get(f"{b}/admin/")
            assert page_a.status_code == 200 and first.email in page_a.text
            assert page_b.status_code == 200 and second.email in page_b.text
