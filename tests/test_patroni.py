"""Fault tests on a real three-node Patroni cluster (synchronous replication), under 8 writers
that retry with idempotency keys: the primary killed, a planned switchover, a partition.

One cluster for the module (tests/patroni_cluster.py), brought back to three healthy nodes
before each test. The figures are printed (`pytest -s`) and quoted in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

import coach_db
from tests.conftest import run_aerich
from tests.factories import make_session
from tests.failover_load import Load, check_nothing_lost_or_doubled, run_writers
from tests.patroni_cluster import Node, PatroniCluster, missing
from tests.processes import ROOT, subprocess_env
from tests.studio import post, sign_in
from tests.test_faults import STAFF_EMAIL, _make_staff, studio_process
from tests.test_studio_forms import scenario_form
from tests.throwaway import ThrowawayRedis

MISSING = missing()
# Under CI a test that cannot run fails rather than skips (.ci/run installs what it needs).
pytestmark = [
    pytest.mark.once,
    pytest.mark.skipif(bool(MISSING) and not os.environ.get("CI"), reason=str(MISSING)),
]
FIGURES: dict[str, object] = {}
WRITERS = 8


@pytest.fixture(scope="module")
def cluster() -> Iterator[PatroniCluster]:
    if MISSING:
        pytest.fail(MISSING)
    with PatroniCluster() as cluster:
        leader = cluster.wait_healthy()

        async def create() -> None:
            conn = await asyncpg.connect(leader.url("postgres"))
            try:
                await conn.execute("CREATE DATABASE coach")
            finally:
                await conn.close()

        asyncio.run(create())
        # Through the multi-host URL, as a deploy would.
        migrated = run_aerich("upgrade", url=cluster.url())
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        yield cluster
        print("\nPatroni figures:", json.dumps(FIGURES, indent=1))


@pytest.fixture
async def on_cluster(cluster: PatroniCluster, package_url: str) -> AsyncIterator[PatroniCluster]:
    """Three healthy nodes, the package connected to all three; the suite's database after."""
    for node in cluster.nodes:
        node.heal()
        if node.proc is None or node.proc.poll() is not None:
            node.start()
    leader = await asyncio.to_thread(cluster.wait_healthy, 120)
    # The primary listed first: when it is cut off, each connection meets it before the others.
    await coach_db.init_db(cluster.url(first=leader, timeout="2", command_timeout="5"))
    try:
        yield cluster
    finally:
        await coach_db.init_db(package_url)


async def _load() -> tuple[Load, list[asyncio.Task[None]]]:
    sessions = [await make_session() for _ in range(WRITERS)]
    load = Load([s.id for s in sessions])
    writers = await run_writers(load)
    await load.wait_for(lambda: load.acked_since(0) >= WRITERS * 10)
    return load, writers


async def _finish(load: Load, writers: list[asyncio.Task[None]], since: float) -> None:
    """Every writer has had writes acknowledged after `since`; then stop them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not (min(load.last_ack) > since and load.acked_since(since) > 80):
        assert loop.time() < deadline, "some writers did not continue by themselves"
        await asyncio.sleep(0.1)
    load.stop.set()
    await asyncio.wait_for(asyncio.gather(*writers), 60)


async def _new_leader(cluster: PatroniCluster, old: str, patience: float = 60) -> float:
    """Seconds until a node other than `old` leads."""
    started = time.monotonic()
    while time.monotonic() - started < patience:
        leader = await asyncio.to_thread(cluster.leader)
        if leader is not None and leader.name != old:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise AssertionError(f"no new leader within {patience} s: {cluster.members()}")


async def test_kill_9_of_the_primary_node_loses_and_doubles_nothing(
    on_cluster: PatroniCluster,
) -> None:
    """The primary's machine dies (kill -9 of Patroni and PostgreSQL): a standby takes over,
    every writer continues by itself, 0 acknowledged writes lost, 0 duplicates."""
    load, writers = await _load()
    loop = asyncio.get_running_loop()
    old = on_cluster.leader()
    assert old is not None
    killed = loop.time()
    old.kill()
    elected = await _new_leader(on_cluster, old.name)
    await _finish(load, writers, killed + elected)
    leader = on_cluster.leader()
    assert leader is not None
    figures = await check_nothing_lost_or_doubled(load, leader.url())
    assert figures["rows"] == figures["acknowledged"]
    refused = load.longest_wait(after=killed)
    FIGURES["node killed: new leader after (s)"] = round(elected, 1)
    FIGURES["node killed: writes refused for (s)"] = round(refused, 1)
    FIGURES["node killed"] = figures | {"refusals": load.refusals}
    assert refused < 30  # the target is < 15 s (TTL 8 s); a loaded machine gets slack


async def test_kill_9_of_the_primary_postmaster_loses_and_doubles_nothing(
    on_cluster: PatroniCluster,
) -> None:
    """Only PostgreSQL dies (Patroni lives and restarts it, or a standby takes over)."""
    load, writers = await _load()
    loop = asyncio.get_running_loop()
    old = on_cluster.leader()
    assert old is not None
    killed = loop.time()
    old.kill_postgres()
    await asyncio.sleep(2)
    await _finish(load, writers, loop.time())
    leader = await asyncio.to_thread(on_cluster.wait_healthy, 120)
    figures = await check_nothing_lost_or_doubled(load, leader.url())
    assert figures["rows"] == figures["acknowledged"]
    FIGURES["postmaster killed: writes refused for (s)"] = round(load.longest_wait(killed), 1)
    FIGURES["postmaster killed"] = figures | {"leader after": leader.name, "before": old.name}


async def test_a_planned_switchover_pauses_writers_briefly(on_cluster: PatroniCluster) -> None:
    load, writers = await _load()
    loop = asyncio.get_running_loop()
    old = on_cluster.leader()
    assert old is not None
    # In synchronous mode Patroni switches over to the synchronous standby only.
    sync = next(m["name"] for m in on_cluster.members() if m["role"] == "sync_standby")
    candidate = next(n for n in on_cluster.nodes if n.name == sync)
    started = loop.time()
    await asyncio.to_thread(
        on_cluster.patronictl,
        "switchover",
        "--leader",
        old.name,
        "--candidate",
        candidate.name,
        "--force",
    )
    switched = await _new_leader(on_cluster, old.name)
    await _finish(load, writers, started + switched)
    figures = await check_nothing_lost_or_doubled(load, candidate.url())
    assert figures["rows"] == figures["acknowledged"]
    FIGURES["switchover: writers paused for (s)"] = round(load.longest_wait(started), 1)
    FIGURES["switchover"] = figures


def _writer_beside(node: Node, session_id: int) -> subprocess.Popen[bytes]:
    """tests/partition_writer.py in the node's namespace, writing to it alone."""
    url = node.netns_url() + "?timeout=2&command_timeout=3"
    return subprocess.Popen(
        [*node.run_in_netns(sys.executable, "-m", "tests.partition_writer"), url, str(session_id)],
        cwd=ROOT,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


async def test_a_primary_cut_off_stops_acknowledging_and_its_writes_survive(
    on_cluster: PatroniCluster,
) -> None:
    """Partition (Jepsen's split-brain check): the primary loses etcd, the other nodes and the
    clients. A client on its side of the cut writes with keys: no write is acknowledged by the
    old primary once the others have elected a new one, and every write it did acknowledge is
    on the new primary after the cut heals. The writers on the majority side continue."""
    load, writers = await _load()
    old = on_cluster.leader()
    assert old is not None
    session = await make_session()
    inside = _writer_beside(old, session.id)
    try:
        assert inside.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(inside.stdout.readline), 60)
        assert ready == b"ready\n", ready
        await asyncio.sleep(1)  # it writes while the cluster is whole
        loop = asyncio.get_running_loop()
        cut_at, cut = time.time(), loop.time()
        old.cut()
        elected = await _new_leader(on_cluster, old.name)
        elected_at = cut_at + elected
        await _finish(load, writers, cut + elected)
        await asyncio.sleep(2)  # the old primary's side keeps trying meanwhile
        out, _ = await asyncio.to_thread(inside.communicate, b"stop\n", 60)
    finally:
        if inside.poll() is None:
            inside.kill()
    acked_inside = json.loads(out)
    old.heal()
    leader = await asyncio.to_thread(on_cluster.wait_healthy, 120)
    assert leader is not old
    figures = await check_nothing_lost_or_doubled(load, leader.url())
    conn = await asyncpg.connect(leader.url())
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, id FROM message WHERE session_id = $1", session.id
        )
    finally:
        await conn.close()
    stored = {row["idempotency_key"]: row["id"] for row in rows}
    after_cut = [a for a in acked_inside if a[2] > cut_at]
    after_election = [a for a in acked_inside if a[2] > elected_at]
    diverged = [a for a in acked_inside if stored.get(a[0]) != a[1]]
    FIGURES["partition"] = figures | {
        "new leader after (s)": round(elected, 1),
        "writers on the majority side paused for (s)": round(load.longest_wait(cut), 1),
        "acknowledged by the old primary before the cut": len(acked_inside) - len(after_cut),
        "acknowledged by the old primary after the cut": len(after_cut),
        "their delays after the cut (s)": [round(float(a[2]) - cut_at, 3) for a in after_cut],
        "after the election": len(after_election),
        "lost or diverged": len(diverged),
    }
    assert acked_inside, "the writer beside the old primary never wrote"
    # On failure: each wrong acknowledgement with its time from the cut, and the old node's log.
    timeline = [[*a, round(float(a[2]) - cut_at, 2), stored.get(a[0])] for a in diverged]
    context = f"elected {elected:.1f} s after the cut; {timeline}\n{old.log.read_text()[-4000:]}"
    assert after_election == [], context
    assert diverged == [], context


async def _make_editor(url: str) -> None:
    await _make_staff(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE \"user\" SET role = 'editor' WHERE email = $1", STAFF_EMAIL)
    finally:
        await conn.close()


@pytest.fixture
def studio_on_cluster(
    on_cluster: PatroniCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`coach-db studio` on the cluster's multi-host URL, in a process of its own."""
    leader = on_cluster.leader()
    assert leader is not None
    asyncio.run(_make_editor(leader.url()))
    log = tmp_path_factory.mktemp("studio") / "studio.log"
    url = on_cluster.url(timeout="2", command_timeout="5")
    with (
        ThrowawayRedis() as redis_server,
        studio_process(url, redis_server.url, tmp_path_factory.mktemp("home"), log) as studio,
    ):
        yield studio


async def test_the_studio_answers_503_during_a_failover_and_recovers_by_itself(
    on_cluster: PatroniCluster, studio_on_cluster: str
) -> None:
    """Pages answer 200 or a 503 that says the database is not answering, never a 500, and 200
    again by themselves; a form sent across the failover is stored once or said to be unsure,
    and sending it again (what its page advises) never stores it twice."""
    async with httpx.AsyncClient(base_url=studio_on_cluster, timeout=60) as client:
        assert (await sign_in(client, STAFF_EMAIL)).status_code == 303
        old = on_cluster.leader()
        assert old is not None
        form = scenario_form()
        started = time.monotonic()
        old.kill()
        submitted = await post(client, "/admin/scenario/create", form)
        statuses: list[int] = []
        recovered = None
        while time.monotonic() - started < 60:
            response = await client.get("/admin/scenario/list")
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert "The database" in response.text
            elif response.status_code == 200 and time.monotonic() - started > 1:
                recovered = time.monotonic() - started
                break
            await asyncio.sleep(0.2)
        assert recovered is not None, statuses
        assert set(statuses) <= {200, 503}, statuses
        assert submitted.status_code in (303, 503), submitted.text[:500]
        if submitted.status_code == 503:
            assert "check whether it was stored" in submitted.text or "nothing was saved" in (
                submitted.text
            )
        again = await post(client, "/admin/scenario/create", form)
        assert again.status_code in (303, 422), again.text[:500]
    leader = on_cluster.leader()
    assert leader is not None
    conn = await asyncpg.connect(leader.url())
    try:
        count = await conn.fetchval("SELECT count(*) FROM scenario WHERE slug = $1", form["slug"])
    finally:
        await conn.close()
    assert count == 1
    FIGURES["studio: pages back by themselves after (s)"] = round(recovered, 1)
    FIGURES["studio: statuses seen"] = sorted(set(statuses))
    FIGURES["studio: form sent across the failover"] = submitted.status_code
