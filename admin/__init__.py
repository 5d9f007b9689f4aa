"""The studio: a fastapi-admin data browser for the coach-db tables (`python -m admin`)."""

import sys

try:
    from admin import compat  # noqa: F401 - the shims must run before anything imports fastapi_admin
except ModuleNotFoundError as missing:
    from coach_db.cli import studio_not_installed

    message = studio_not_installed(missing.name or "module")
    if sys.argv[:1] == ["-m"]:  # `python -m admin`: one line, as `coach-db studio` says it
        print(f"studio: {message}", file=sys.stderr)
        sys.exit(1)
    raise ModuleNotFoundError(message, name=missing.name) from missing
