"""The studio behind a real TLS-terminating nginx (Debian's package), as it runs in production.

nginx with its defaults: it sends `Host: 127.0.0.1:<studio port>` and no X-Forwarded-Proto, so
only STUDIO_PUBLIC_URL tells the studio which origin its pages have. It passes the client's
address in X-Forwarded-For (as the README asks), which the studio believes from nginx's
address only because STUDIO_TRUSTED_PROXIES names it (the default believes nobody).
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coach_db import User
from tests.factories import make_user
from tests.processes import ROOT, free_port, needs, subprocess_env
from tests.studio import STAFF_PASSWORD, make_staff

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
OPENSSL = shutil.which("openssl")

# Skipped on a developer's machine without them; under CI (CI=true) the test runs and fails.
pytestmark = needs(
    "nginx/openssl not installed (apt-get install nginx)"
    if NGINX is None or OPENSSL is None
    else None
)

NGINX_CONF = """
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{}}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def wait_for(url: str, proc: subprocess.Popen[Any], what: str, **options: Any) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2, **options).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"{what} did not answer within 90 s")


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def behind_nginx(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    redis_url: str,
    studio_settings: Any,
) -> Iterator[tuple[str, ssl.SSLContext]]:
    """https://localhost:<port>: nginx with a self-signed certificate, `python -m admin` behind."""
    tmp = tmp_path_factory.mktemp("nginx")
    keys = ["-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")]
    subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
    subprocess.run(
        [
            str(OPENSSL),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            *keys,
            *subject,
        ],
        check=True,
        capture_output=True,
    )
    port, upstream = free_port(), free_port()
    public = f"https://localhost:{port}"
    env = subprocess_env(
        database_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=f"{studio_settings.redis_prefix}proxy:",
        STUDIO_PUBLIC_URL=public,
        STUDIO_TRUSTED_PROXIES="127.0.0.1",  # nginx's address: its X-Forwarded-For is believed
    )
    log = (tmp / "studio.log").open("w")
    studio = subprocess.Popen(
        [sys.executable, "-m", "admin", "--port", str(upstream)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port, upstream=upstream))
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tls = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    try:
        wait_for(f"http://127.0.0.1:{upstream}/admin/login", studio, "python -m admin")
        wait_for(f"{public}/admin/login", nginx, "nginx", verify=tls)
        yield public, tls
    finally:
        stop(nginx)
        stop(studio)
        log.close()


async def test_sign_in_and_edit_through_a_tls_proxy_that_rewrites_host(
    behind_nginx: tuple[str, ssl.SSLContext],
) -> None:
    public, tls = behind_nginx
    port = public.rsplit(":", 1)[1]
    staff = await make_staff()
    learner = await make_user(username="Before")
    # What a browser sends on a form POST: the page's Origin.
    async with httpx.AsyncClient(base_url=public, verify=tls, headers={"Origin": public}) as web:
        page = await web.get("/admin/login")
        assert page.status_code == 200
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        csrf_cookie = next(c for c in page.headers.get_list("set-cookie") if "studio_csrf_" in c)
        assert csrf_cookie.startswith(f"studio_csrf_{port}=") and "Secure" in csrf_cookie
        token = web.cookies[f"studio_csrf_{port}"]

        signed_in = await web.post(
            "/admin/login",
            data={"email": staff.email, "password": STAFF_PASSWORD, "csrf_token": token},
        )
        assert signed_in.status_code == 303, signed_in.text[-500:]
        assert signed_in.headers["location"] == "/admin/"
        session = next(
            c for c in signed_in.headers.get_list("set-cookie") if "studio_session_" in c
        )
        assert session.startswith(f"studio_session_{port}=") and "Secure" in session
        token = web.cookies[f"studio_csrf_{port}"]  # rotated at sign-in

        assert (await web.get("/admin/user/list")).status_code == 200
        form = await web.get(f"/admin/user/update/{learner.pk}")
        assert form.status_code == 200
        data = {"email": learner.email, "username": "After", "csrf_token": token}
        # Every hidden field of the form, as a browser submits it (a row version, say).
        for name, value in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form.text):
            data.setdefault(name, value)
        saved = await web.post(f"/admin/user/update/{learner.pk}", data=data)
        assert saved.status_code == 303, saved.text[-500:]
    assert (await User.get(pk=learner.pk)).username == "After"


async def test_another_origin_is_still_refused_behind_the_proxy(
    behind_nginx: tuple[str, ssl.SSLContext],
) -> None:
    public, tls = behind_nginx
    staff = await make_staff()
    async with httpx.AsyncClient(base_url=public, verify=tls) as web:
        await web.get("/admin/login")
        token = next(v for k, v in web.cookies.items() if k.startswith("studio_csrf_"))
        refused = await web.post(
            "/admin/login",
            data={"email": staff.email, "password": STAFF_PASSWORD, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert refused.status_code == 403 and "another site" in refused.text


async def test_the_rate_limit_sees_the_client_behind_the_proxy(
    behind_nginx: tuple[str, ssl.SSLContext],
) -> None:
    """Through the proxy an attacker on 127.0.0.2 locks the account only for 127.0.0.2."""
    public, tls = behind_nginx
    staff = await make_staff()

    async def sign_in_from(address: str, password: str) -> int:
        transport = httpx.AsyncHTTPTransport(verify=tls, local_address=address)
        async with httpx.AsyncClient(
            base_url=public, transport=transport, headers={"Origin": public}
        ) as web:
            await web.get("/admin/login")
            token = next(v for k, v in web.cookies.items() if k.startswith("studio_csrf_"))
            data = {"email": staff.email, "password": password, "csrf_token": token}
            return (await web.post("/admin/login", data=data)).status_code

    for _ in range(5):  # STUDIO_LOGIN_FAILURES_PER_ACCOUNT_AND_IP's default
        assert await sign_in_from("127.0.0.2", "wrong") == 401
    assert await sign_in_from("127.0.0.2", STAFF_PASSWORD) == 429
    assert await sign_in_from("127.0.0.3", STAFF_PASSWORD) == 303
