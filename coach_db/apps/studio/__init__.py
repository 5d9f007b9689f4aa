"""The studio: a fastapi-admin data browser for the coach-db tables (`coach-db studio`).

Importing this package loads nothing of fastapi-admin, so that the CLI can register
`coach-db studio` (command.py) cheaply, and say what to install when the `studio` extra is
missing. Each module that imports fastapi_admin imports compat first: its shims must run
before fastapi_admin's first import.
"""

# Modules of the `studio` extra; without them, `coach-db studio` says what to install.
STUDIO_MODULES = ("fastapi_admin", "fastapi", "uvicorn", "redis", "multipart", "babel")


def studio_not_installed(what: str) -> str:
    """What `coach-db studio` and `python -m admin` say when the studio extra is missing."""
    return (
        f"The studio is not installed (no {what}): it comes with the `studio` extra. "
        "Install coach-db[studio], e.g. `pip install 'coach-db[studio]'` or "
        "`uv add 'coach-db[studio]'`."
    )
