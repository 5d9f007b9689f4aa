"""Studio roles (viewer < editor < admin) and the server-side check of every route.

A viewer reads everything and changes nothing; an editor also writes scenarios, sessions and
messages; an admin also manages users, staff and their roles. The role is `User.role`; only
staff (`is_staff`) sign in at all. Every route is checked here, whatever the page shows: a
hidden button is a convenience, the 403 is the rule.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_403_FORBIDDEN

from coach_db.models import StaffRole, User

ROLES: tuple[str, ...] = tuple(role.value for role in StaffRole)  # viewer, editor, admin
_RANK = {role: rank for rank, role in enumerate(ROLES)}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Routes every signed-in staff member may post to: their own sign-in, sign-out and password.
SELF_SERVICE = frozenset({"/login", "/logout", "/password"})
# Resources (fastapi-admin's lower-case model names) whose rows only an admin writes: the
# accounts, with their staff flag, role and password.
ADMIN_RESOURCES = frozenset({"user"})


def rank(role: str) -> int:
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return _RANK[role]


def has_role(user: User | None, role: str) -> bool:
    """Whether `user` is signed-in staff with `role` or a higher one."""
    needed = rank(role)
    return user is not None and user.is_staff and _RANK.get(str(user.role), -1) >= needed


async def require_role(request: Request, role: str) -> User:
    """The signed-in staff user when their role is `role` ("viewer", "editor", "admin") or
    higher; else HTTPException 401 (nobody signed in) or 403 (a lower role)."""
    needed = rank(role)
    user: User | None = getattr(request.state, "admin", None)
    if user is None:
        raise HTTPException(status_code=HTTP_401_UNAUTHORIZED)
    if not has_role(user, role):
        raise HTTPException(
            status_code=HTTP_403_FORBIDDEN,
            detail=f"This needs the {ROLES[needed]} role; your role is {user.role}.",
        )
    return user


def write_role(resource: str | None) -> str:
    """The role that may create, edit and delete rows of `resource`."""
    return StaffRole.ADMIN.value if resource in ADMIN_RESOURCES else StaffRole.EDITOR.value


def may_write(request: Request, resource: str | None) -> bool:
    """Whether the signed-in user may change rows of `resource` (what the pages offer)."""
    return has_role(getattr(request.state, "admin", None), write_role(resource))


def role_needed(request: Request) -> str | None:
    """The role a request needs, from its method and route: None for the self-service routes,
    the write role of the route's resource for every state-changing request and for the create
    form, else viewer (reading)."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    if path in SELF_SERVICE:
        return None
    if request.method not in SAFE_METHODS or path.endswith("/create"):
        # A route without a resource changes something else: editors at least (a route that
        # needs more calls require_role itself, e.g. an admin-only action).
        return write_role(request.path_params.get("resource"))
    return StaffRole.VIEWER.value


async def enforce_roles(request: Request) -> None:
    """App-wide dependency (after auth.load_staff): refuse a request the user's role does not
    allow, before its route runs. A state-changing request by nobody is a 401; pages leave
    that to their own require_staff (which redirects to the sign-in page)."""
    needed = role_needed(request)
    if needed is None:
        return
    if getattr(request.state, "admin", None) is None and request.method in SAFE_METHODS:
        return
    await require_role(request, needed)
