"""Studio roles: viewer < editor < admin (placeholder until the `versions` branch's roles)."""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.status import HTTP_401_UNAUTHORIZED


async def require_role(request: Request, role: str) -> None:
    """Refuse the request unless the signed-in staff user has `role`; for now every staff
    user counts as admin (the roles of the `versions` branch replace this at the merge)."""
    if request.state.admin is None:
        raise HTTPException(status_code=HTTP_401_UNAUTHORIZED)
