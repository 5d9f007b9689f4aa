"""The one Jinja environment (fastapi-admin's), with the studio's templates first, and render()."""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

from pathlib import Path
from typing import Any

from fastapi_admin.template import templates
from starlette.requests import Request
from starlette.responses import Response

from coach_db.apps.studio.config import ADMIN_PATH

TEMPLATES = Path(__file__).resolve().parent / "templates"


def use_studio_templates() -> None:
    """Ours override fastapi-admin's same-named templates; `static_url()` names an asset."""
    searchpath = templates.env.loader.searchpath
    if str(TEMPLATES) not in searchpath:
        searchpath.insert(0, str(TEMPLATES))
    templates.env.globals["static_url"] = lambda path: f"{ADMIN_PATH}/static/{path}"


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    response: Response = templates.TemplateResponse(request, name, context or {}, status_code)
    return response
