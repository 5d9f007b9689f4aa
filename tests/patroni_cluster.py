"""A throwaway three-node Patroni cluster for the failover tests: Debian's patroni, etcd and
PostgreSQL 15, each node in a network namespace of its own so that a test can cut it off.

Network: a namespace `<tag>sw` holds a bridge; each node's namespace `<tag>n<i>` is wired to it
by a veth pair (10.222.<net>.1<i>), and one more veth pair gives this process (the root
namespace) 10.222.<net>.1, where etcd listens. Cutting a node = setting its bridge port down:
it loses etcd, the other nodes and the clients at once. Only addresses created here are used;
teardown deletes the namespaces (which deletes their veths) and kills every process, whatever
failed. The nodes run as the `postgres` OS user (PostgreSQL refuses root), data in a temp folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

from coach_db.tools.embedded.processes import Server
from tests.processes import free_port

PATRONI = shutil.which("patroni") or "/usr/bin/patroni"
PATRONICTL = shutil.which("patronictl") or "/usr/bin/patronictl"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Patroni's timings, set for a fast failover: the leader key lives TTL seconds unless renewed
# (every LOOP_WAIT); a dead primary's key expires within TTL, then a standby takes over.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 8, 1, 3
PASSWORD = "patroni-test"


def missing() -> str | None:
    """Why the cluster cannot run here, or None."""
    for tool in (PATRONI, ETCD, str(PG_BIN / "postgres")):
        if not Path(tool).exists():
            return f"{tool} is missing (`.ci/run` installs patroni, etcd-server, postgresql-15)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Node:
    def __init__(self, cluster: PatroniCluster, number: int) -> None:
        self.cluster = cluster
        self.name = f"node{number}"
        self.netns = f"{cluster.tag}n{number}"
        self.bridge_port = f"v{number}"
        self.address = f"{cluster.prefix}.1{number}"
        self.folder = cluster.folder / self.name
        self.data = self.folder / "data"
        self.config = self.folder / "patroni.yml"
        self.log = self.folder / "patroni.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        c = self.cluster
        config = {
            "scope": f"coach-{c.tag}",
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"{self.address}:8008",
                "connect_address": f"{self.address}:8008",
            },
            "etcd3": {"hosts": [f"{c.prefix}.1:{c.etcd_port}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL,
                    "loop_wait": LOOP_WAIT,
                    "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "parameters": {"wal_log_hints": "on", "max_connections": 60},
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
                "pg_hba": [
                    "local all all trust",
                    f"host replication all {c.prefix}.0/24 trust",
                    f"host all all {c.prefix}.0/24 trust",
                    "host all all 127.0.0.1/32 trust",
                ],
            },
            "postgresql": {
                "listen": f"{self.address},127.0.0.1:5432",
                "connect_address": f"{self.address}:5432",
                "data_dir": str(self.data),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.folder / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": PASSWORD},
                    "replication": {"username": "replicator", "password": PASSWORD},
                    "rewind": {"username": "postgres", "password": PASSWORD},
                },
                "parameters": {
                    "unix_socket_directories": str(self.folder),
                    "shared_buffers": "32MB",
                },
            },
        }
        # JSON is YAML.
        self.config.write_text(json.dumps(config, indent=1))

    def start(self) -> None:
        """Start Patroni (which starts PostgreSQL) in the node's namespace, as postgres."""
        assert self.proc is None or self.proc.poll() is not None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.run_in_netns("runuser", "-u", "postgres", "--"), PATRONI, str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def run_in_netns(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *command]

    def postmaster_pids(self) -> list[int]:
        """The postmaster of this node and its children, if running."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        if not Path(f"/proc/{pid}").exists():
            return []
        return [pid, *_children(pid)]

    def kill_postgres(self) -> None:
        """kill -9 the postmaster and its processes (Patroni lives on)."""
        for pid in self.postmaster_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """kill -9 the whole node: Patroni and PostgreSQL, as if the machine died."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.kill_postgres()

    def cut(self) -> None:
        """Partition: the node loses etcd, the other nodes and every client."""
        _ip("-n", self.cluster.switch, "link", "set", self.bridge_port, "down")

    def heal(self) -> None:
        _ip("-n", self.cluster.switch, "link", "set", self.bridge_port, "up")

    def url(self, database: str = "coach") -> str:
        return f"postgres://postgres:{PASSWORD}@{self.address}:5432/{database}"

    def netns_url(self, database: str = "coach") -> str:
        """The node as a client inside its own namespace reaches it."""
        return f"postgres://postgres:{PASSWORD}@127.0.0.1:5432/{database}"


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(proc.name))
    return found


class PatroniCluster(Server):
    """`with PatroniCluster() as cluster:` three nodes and etcd; everything gone after."""

    def __init__(self) -> None:
        self.tag = f"cdb{random.randrange(16**4):04x}"
        self.prefix = f"10.222.{random.randrange(1, 250)}"
        self.switch = f"{self.tag}sw"
        self.host_link = f"{self.tag}h"
        self.folder = Path(tempfile.mkdtemp(prefix="coach-db-patroni-"))
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.etcd: subprocess.Popen[bytes] | None = None
        self.nodes = [Node(self, n) for n in (1, 2, 3)]
        self._namespaces: list[str] = []

    # --- set-up and teardown (`with` from Server: a failed start is stopped too) ---------------

    def start(self) -> Self:
        self._network()
        entry = pwd.getpwnam("postgres")
        self.folder.chmod(0o755)
        for node in self.nodes:
            node.folder.mkdir()
            os.chown(node.folder, entry.pw_uid, entry.pw_gid)
            node.write_config()
        etcd_data = self.folder / "etcd"
        peer = f"http://{self.prefix}.1:{self.etcd_peer_port}"
        client = f"http://{self.prefix}.1:{self.etcd_port}"
        with (self.folder / "etcd.log").open("ab") as log:
            self.etcd = subprocess.Popen(
                [
                    *(ETCD, "--name", "e1", "--data-dir", str(etcd_data)),
                    *("--listen-client-urls", client, "--advertise-client-urls", client),
                    *("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer),
                    *("--initial-cluster", f"e1={peer}", "--initial-cluster-state", "new"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        for node in self.nodes:
            node.start()
        self.wait_healthy(timeout=180)
        return self

    def _network(self) -> None:
        _ip("netns", "add", self.switch)
        self._namespaces.append(self.switch)
        _ip("-n", self.switch, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        _ip(
            "link",
            "add",
            self.host_link,
            "type",
            "veth",
            "peer",
            "name",
            "h0",
            "netns",
            self.switch,
        )
        _ip("-n", self.switch, "link", "set", "h0", "master", "br0", "up")
        _ip("addr", "add", f"{self.prefix}.1/24", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        for node in self.nodes:
            _ip("netns", "add", node.netns)
            self._namespaces.append(node.netns)
            _ip("-n", node.netns, "link", "set", "lo", "up")
            peer = f"e{node.bridge_port}"
            _ip(
                "-n",
                self.switch,
                "link",
                "add",
                node.bridge_port,
                "type",
                "veth",
                "peer",
                "name",
                peer,
            )
            _ip("-n", self.switch, "link", "set", node.bridge_port, "master", "br0", "up")
            _ip("-n", self.switch, "link", "set", peer, "netns", node.netns)
            _ip("-n", node.netns, "link", "set", peer, "name", "eth0")
            _ip("-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0")
            _ip("-n", node.netns, "link", "set", "eth0", "up")

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.kill()
        if self.etcd is not None and self.etcd.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.etcd.pid, signal.SIGKILL)
            self.etcd.wait(timeout=30)
        for namespace in reversed(self._namespaces):
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", namespace)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.host_link)  # gone with its peer already, normally
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- state -----------------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view of the cluster (its REST API /cluster), from any node that answers."""
        for node in self.nodes:
            try:
                with urllib.request.urlopen(f"http://{node.address}:8008/cluster", timeout=1) as r:
                    found: list[dict[str, Any]] = json.load(r)["members"]
                    return found
            except OSError:
                continue
        return []

    def leader(self) -> Node | None:
        for member in self.members():
            if member["role"] == "leader" and member["state"] == "running":
                return next(n for n in self.nodes if n.name == member["name"])
        return None

    def healthy(self) -> bool:
        members = self.members()
        roles = sorted(m["role"] for m in members if m["state"] in ("running", "streaming"))
        return roles == ["leader", "replica", "sync_standby"]

    def wait_healthy(self, timeout: float = 120) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy() and (leader := self.leader()) is not None:
                return leader
            time.sleep(0.5)
        logs = "\n".join(
            f"--- {n.name}\n{n.log.read_text()[-1500:] if n.log.exists() else ''}"
            for n in self.nodes
        )
        raise RuntimeError(f"the cluster did not become healthy: {self.members()}\n{logs}")

    def url(self, first: Node | None = None, **query: str) -> str:
        """The multi-host URL of the nodes, `first` first (a node a test will cut off: the worst
        place for it, since every new connection tries it before the others)."""
        nodes = sorted(self.nodes, key=lambda n: n is not first)
        hosts = ",".join(f"{n.address}:5432" for n in nodes)
        extra = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgres://postgres:{PASSWORD}@{hosts}/coach" + (f"?{extra}" if extra else "")

    def patronictl(self, *args: str) -> str:
        return subprocess.run(
            [PATRONICTL, "-c", str(self.nodes[0].config), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
