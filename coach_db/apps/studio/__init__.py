"""The studio: a fastapi-admin data browser for the coach-db tables (`coach-db studio`)."""

import contextlib

# Modules of the `studio` extra; without them, `coach-db studio` says what to install.
STUDIO_MODULES = ("fastapi_admin", "fastapi", "uvicorn", "redis", "multipart", "babel")


def studio_not_installed(what: str) -> str:
    """What `coach-db studio` and `python -m admin` say when the studio extra is missing."""
    return (
        f"The studio is not installed (no {what}): it comes with the `studio` extra. "
        "Install coach-db[studio], e.g. `pip install 'coach-db[studio]'` or "
        "`uv add 'coach-db[studio]'`."
    )


# compat's shims must run before anything imports fastapi_admin. Without the `studio` extra the
# package still imports, so that `coach-db studio` (command.py) can say what to install; the
# modules that need the extra fail on their own import.
with contextlib.suppress(ModuleNotFoundError):
    from coach_db.apps.studio import compat  # noqa: F401
