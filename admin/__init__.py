"""The studio: a fastapi-admin data browser for the coach-db tables (`python -m admin`)."""

from admin import compat  # noqa: F401 - the shims must run before anything imports fastapi_admin
