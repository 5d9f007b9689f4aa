"""The `coach-db` command (also `python -m coach_db`): migrate, deploy, status, generate, ...

The commands of the tools live in this package; the apps (the studio, the seed) add theirs
through the `coach_db.commands` entry points, each a `register(app, friendly)`: the CLI never
imports them by name.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from coach_db.tools.adoption import cli as _adoption_cli
from coach_db.tools.cli import audit as _audit_cli
from coach_db.tools.cli import data as _data  # noqa: F401 - its commands register on import
from coach_db.tools.cli import migrations as _migrations  # noqa: F401 - likewise
from coach_db.tools.cli import privacy as _privacy_cli
from coach_db.tools.cli.app import app, friendly, main
from coach_db.tools.roles import console as _console_role

COMMANDS_GROUP = "coach_db.commands"

# --- a person's data and research exports (coach_db/tools/cli/privacy.py) ---------------------
_privacy_cli.register(app, friendly)
# --- audit chain and the runtime role (coach_db/tools/cli/audit.py) ---------------------------
_audit_cli.register(app, friendly)
# --- the studio SQL console's read-only role (coach_db/tools/roles/console.py) ----------------
_console_role.register(app, friendly)
# --- adopting a database the Prisma package made (coach_db/tools/adoption/) -------------------
_adoption_cli.register(app, friendly)

# --- the apps' commands: `studio`, `seed` -----------------------------------------------------
for _entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda entry: entry.name):
    _entry.load()(app, friendly)

__all__ = ["app", "friendly", "main"]
