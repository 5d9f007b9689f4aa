"""The studio's audit trail: recording changes and views, the audit list, History, erasure.

Changes are recorded by views.py's save and delete handlers inside the transaction of the
change itself (both happen or neither); the trail is append-only in the database
(migration 7), and the studio has no route that edits or deletes its rows.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from fastapi_admin.depends import get_model, get_resources
from starlette.status import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from tortoise import connections
from tortoise.expressions import Q
from tortoise.functions import Count, Lower
from tortoise.models import Model
from tortoise.queryset import QuerySet

from coach_db import privacy
from coach_db.apps.studio import params
from coach_db.apps.studio.auth import forget_login_failures, require_staff
from coach_db.apps.studio.roles import require_role
from coach_db.apps.studio.templating import render
from coach_db.errors import CoachDbError
from coach_db.models import AuditAction, AuditEvent, ConversationSession, Message, User

router = APIRouter(dependencies=[Depends(require_staff)])
Sidebar = Annotated[Any, Depends(get_resources)]
ModelOf = Annotated[Any, Depends(get_model)]

AUDIT_PAGE = 50
# Never in the trail: the hash itself (a change shows as "changed"), and columns the database
# bumps on every write.
PASSWORD_FIELD = "password_hash"
NOT_RECORDED = {PASSWORD_FIELD, "updated_at", "version"}
MODELS = ("user", "scenario", "conversationsession", "message")
# What the trail names each model (and the SQL console's statements) in the studio.
LABELS = {
    "user": "User",
    "scenario": "Scenario",
    "conversationsession": "Session",
    "message": "Message",
    "sql": "SQL console",
}


def model_name(model: type[Model]) -> str:
    """The studio's name of a model (fastapi-admin's resource: its class name in lower case)."""
    return model.__name__.lower()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(obj: Model) -> dict[str, Any]:
    """The row's recorded columns as JSON values (foreign keys as their ids)."""
    values = {}
    for name in obj._meta.db_fields:
        if name not in NOT_RECORDED:
            values[name] = _plain(getattr(obj, name))
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{field: [before, after]} for every field that changed."""
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if before.get(name) != value
    }


async def subjects(model: type[Model], rows: list[dict[str, Any]]) -> dict[Any, int | None]:
    """The person each row belongs to (a user's id), by primary key: erasure finds the trail's
    rows about a person by it."""
    if model is User:
        return {row["id"]: row["id"] for row in rows}
    if model is ConversationSession:
        return {row["id"]: row["user_id"] for row in rows}
    if model is Message:
        sessions = {row["session_id"] for row in rows}
        owners = dict(
            await ConversationSession.filter(id__in=sessions).values_list("id", "user_id")
        )
        return {row["id"]: owners.get(row["session_id"]) for row in rows}
    return {row["id"]: None for row in rows}


async def record(
    request: Request,
    action: AuditAction,
    model: type[Model] | str,
    row_id: int | None,
    subject_id: int | None,
    changes: dict[str, Any] | None = None,
) -> None:
    """One audit row by the signed-in staff member (in the caller's transaction, if any)."""
    staff: User | None = request.state.admin
    await AuditEvent.create(
        actor_id=staff.pk if staff else None,
        actor_email=staff.email if staff else None,
        action=action,
        model=model if isinstance(model, str) else model_name(model),
        row_id=row_id,
        subject_id=subject_id,
        changes=changes,
    )


async def record_message_reads(request: Request, message_ids: list[int], via: str) -> None:
    """Messages a page showed (a list, filtered or searched): one `view` row per conversation
    they belong to, about its person, as the transcript records (issue 18)."""
    if not message_ids:
        return
    shown = (
        await Message.filter(id__in=message_ids)
        .group_by("session_id", "session__user_id")
        .annotate(n=Count("id"))
        .values("session_id", "session__user_id", "n")
    )
    await _record_views(
        request,
        [
            (model_name(ConversationSession), r["session_id"], r["session__user_id"], r["n"])
            for r in shown
        ],
        via,
    )


async def record_trail_reads(request: Request, events: list[AuditEvent], via: str) -> None:
    """Audit rows a page showed that hold a message's content (its edits, its deletion): one
    `view` row per message, about its person."""
    seen: dict[int, tuple[str, int, int | None, int]] = {}
    for event in events:
        if event.model == "message" and event.row_id and "content" in (event.changes or {}):
            seen.setdefault(event.row_id, ("message", event.row_id, event.subject_id, 1))
    await _record_views(request, list(seen.values()), via)


async def _record_views(
    request: Request, views: list[tuple[str, int, int | None, int]], via: str
) -> None:
    staff: User | None = request.state.admin
    await AuditEvent.bulk_create(
        [
            AuditEvent(
                actor_id=staff.pk if staff else None,
                actor_email=staff.email if staff else None,
                action=AuditAction.VIEW,
                model=model,
                row_id=row_id,
                subject_id=subject_id,
                changes={"via": via, "messages": count},
            )
            for model, row_id, subject_id, count in views
        ]
    )


async def record_save(
    request: Request,
    obj: Model,
    before: dict[str, Any] | None,
    password_before: str | None = None,
) -> None:
    """A create (before is None) or an update of `obj`, already saved."""
    after = snapshot(obj)
    changes = diff(before or {}, after)
    if isinstance(obj, User) and obj.password_hash != password_before:
        changes["password"] = "changed"
    if before is not None and not changes:
        return  # saved unchanged: nothing happened
    subject = (await subjects(type(obj), [{"id": obj.pk, **after}]))[obj.pk]
    action = AuditAction.CREATE if before is None else AuditAction.UPDATE
    await record(request, action, type(obj), obj.pk, subject, changes)


async def cascade_counts(model: type[Model], keys: list[int]) -> dict[int, dict[str, int]]:
    """What deleting these rows takes with it by cascade, per row: a session's messages, a
    user's sessions and messages (read in the delete's transaction, before it)."""
    if model is ConversationSession:
        rows = (
            await Message.filter(session_id__in=keys)
            .group_by("session_id")
            .annotate(n=Count("id"))
            .values("session_id", "n")
        )
        return {pk: {"messages": 0} for pk in keys} | {
            r["session_id"]: {"messages": r["n"]} for r in rows
        }
    if model is User:
        sessions = await ConversationSession.filter(user_id__in=keys).values(
            "user_id", "total_messages"
        )
        counts = {pk: {"sessions": 0, "messages": 0} for pk in keys}
        for row in sessions:
            counts[row["user_id"]]["sessions"] += 1
            counts[row["user_id"]]["messages"] += row["total_messages"]
        return counts
    return {}


async def record_deletes(
    request: Request,
    model: type[Model],
    rows: list[dict[str, Any]],
    cascaded: dict[int, dict[str, int]] | None = None,
) -> None:
    """Deleted rows, with their last values (read before the delete, same transaction), and
    how many rows went with each by cascade (`"messages": [12, 0]`)."""
    owners = await subjects(model, rows)
    for row in rows:
        values = {k: _plain(v) for k, v in row.items() if k not in NOT_RECORDED}
        changes: dict[str, Any] = {name: [value, None] for name, value in values.items()}
        for what, count in (cascaded or {}).get(row["id"], {}).items():
            changes[what] = [count, 0]
        if model is User:
            changes["password"] = "deleted"
        await record(request, AuditAction.DELETE, model, row["id"], owners[row["id"]], changes)


# --- pages ------------------------------------------------------------------------------------


def _bad(what: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=f"Bad filter: {what}.")


def _number(value: str, what: str) -> int:
    """A row number from the query string: ASCII digits within bigint's range."""
    if not (value.isascii() and value.isdigit() and len(value) <= 19):
        raise _bad(f"{what} must be a row number")
    number = int(value)
    if number > params.INT8_MAX:
        raise _bad(f"{what} is too large for a row number")
    return number


def _cursor(value: str | None) -> int | None:
    """The `before` id of the next page (keyset: no page costs more than the first)."""
    return _number(value, "before") if value else None


def _dated(filters: dict[str, Any]) -> bool:
    """Whether the audit list is filtered by dates (since / until)."""
    return any(name.startswith("created_at__") for name in filters)


def events_of(
    filters: dict[str, Any],
    before: int | None,
    actor_email: str | None = None,
    before_at: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The trail's rows matching `filters` (and an actor's e-mail, compared lower-cased, so
    that migration 12's index on lower(actor_email) finds them: an e-mail nobody has made the
    page read the whole trail, 87 ms at 2M events), before the event `before` (made at
    `before_at`), newest first.

    Filtered by dates, newest first means by (created_at, id), which migration 7's index reads
    from the end of the dates: in id order, `until` a day long ago walked the primary key back
    past every later event (220 ms at 2M, growing with the trail). Otherwise by id, which every
    other filter's index (column, id) reads in order."""
    qs: QuerySet[AuditEvent] = AuditEvent.filter(**filters)
    if actor_email is not None:
        qs = qs.annotate(actor_email_lower=Lower("actor_email")).filter(
            actor_email_lower=actor_email.lower()
        )
    dated = _dated(filters)
    if before is not None and dated and before_at is not None:
        qs = qs.filter(
            Q(created_at__lte=before_at),  # bounds the index scan
            Q(Q(created_at__lt=before_at), Q(created_at=before_at, id__lt=before), join_type="OR"),
        )
    elif before is not None:
        qs = qs.filter(id__lt=before)
    return qs.order_by("-created_at", "-id") if dated else qs.order_by("-id")


async def _page(
    request: Request, filters: dict[str, Any], before: int | None, actor_email: str | None = None
) -> tuple[list[AuditEvent], int | None]:
    before_at = None
    if before is not None and _dated(filters):
        cursor = await AuditEvent.filter(id=before).only("id", "created_at").first()
        if cursor is None:
            raise _bad("before is not an event of the trail")
        before_at = cursor.created_at
    events = await events_of(filters, before, actor_email, before_at).limit(AUDIT_PAGE + 1)
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    return events, events[-1].pk if more and events else None


@router.get("/audit")
async def audit_list(request: Request, resources: Sidebar) -> Response:
    """Every audit row, newest first, filtered by who, model, row, action and dates."""
    query = request.query_params
    filters: dict[str, Any] = {}
    actor_email = None
    shown: dict[str, str] = {}
    try:
        if actor := query.get("actor", "").strip():
            params.check_text(actor)
            if actor.isascii() and actor.isdigit() and len(actor) <= 9:
                filters["actor_id"] = int(actor)
            else:
                actor_email = actor[:254]
            shown["actor"] = actor
        if model := query.get("model", ""):
            if model not in LABELS:
                raise _bad("model is not one of " + ", ".join(LABELS))
            filters["model"] = shown["model"] = model
        if row := query.get("row", ""):
            filters["row_id"] = _number(row, "row")
            shown["row"] = row
        if action := query.get("action", ""):
            if action not in {a.value for a in AuditAction}:
                raise _bad("action is not one of " + ", ".join(a.value for a in AuditAction))
            filters["action"] = shown["action"] = action
        for name, lookup, shift in (("since", "gte", 0), ("until", "lt", 1)):
            if value := query.get(name, ""):
                day = params.parse_filter_date(value) + timedelta(days=shift)
                filters[f"created_at__{lookup}"] = datetime.combine(day, time(), UTC)
                shown[name] = value
    except params.BadValue as exc:
        raise _bad(str(exc)) from None
    before = _cursor(query.get("before"))
    events, next_before = await _page(request, filters, before, actor_email)
    await record_trail_reads(request, events, "audit trail")
    context = {
        "resources": resources,
        "resource_label": "Audit trail",
        "page_pre_title": "Who did what in the studio",
        "page_title": "Audit trail",
        "events": [_view(e) for e in events],
        "filters": shown,
        "models": LABELS,
        "actions": [a.value for a in AuditAction],
        "next_before": next_before,
        "history": None,
    }
    return render(request, "audit.html", context)


@router.get("/{resource}/history/{pk}")
async def history(
    request: Request, resource: str, pk: str, model: ModelOf, resources: Sidebar
) -> Response:
    """Everything the trail holds about one row (also after it was deleted), newest first."""
    if resource not in MODELS:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    try:
        key = params.parse_id(pk, model)
    except params.BadValue:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND) from None
    filters = {"model": resource, "row_id": key}
    events, next_before = await _page(request, filters, _cursor(request.query_params.get("before")))
    await record_trail_reads(request, events, "history")
    row = await model.get_or_none(pk=key)
    context = {
        "resources": resources,
        "resource_label": None,
        "page_pre_title": "History",
        "page_title": f"{LABELS[resource]} #{key}"
        + (f" · {row}" if row is not None else " (deleted)"),
        "events": [_view(e) for e in events],
        "filters": {},
        "models": LABELS,
        "actions": [a.value for a in AuditAction],
        "next_before": next_before,
        "history": {"resource": resource, "pk": key, "exists": row is not None},
    }
    return render(request, "audit.html", context)


def _view(event: AuditEvent) -> dict[str, Any]:
    """An audit row for the template: its changes as (field, before, after) text."""
    changes = []
    for name, value in (event.changes or {}).items():
        if isinstance(value, list) and len(value) == 2:
            before, after = (_text(v) for v in value)
        else:
            before, after = "", _text(value)
        changes.append((name, before, after))
    return {"event": event, "changes": changes}


def _text(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 300 else text[:300] + "…"


# --- erasure (admin role) ---------------------------------------------------------------------


# The confirmation page counts what an erasure deletes up to this many per table ("more than
# 10,000 messages"): the exact figures go on the erasure receipt.
ERASE_COUNT_LIMIT = 10_000


@router.get("/user/erase/{pk}")
async def erase_confirm(request: Request, pk: str, resources: Sidebar) -> Response:
    """What erasing this person deletes, and the button that does it."""
    await require_role(request, "admin")
    user = await _user(pk)
    limit = ERASE_COUNT_LIMIT
    async with connections.get("default").acquire_connection() as conn:
        found = await privacy.counts_in(conn, user.pk, user.email, limit=limit)
    counts = {k: f"more than {limit:,}" if n > limit else f"{n:,}" for k, n in found.items()}
    context = {
        "resources": resources,
        "resource_label": "Users",
        "page_pre_title": "Erase a person's data",
        "page_title": f"Erase {user.email}?",
        "user": user,
        "counts": counts,
    }
    return render(request, "erase.html", context)


@router.post("/user/erase/{pk}")
async def erase(request: Request, pk: str) -> Response:
    """Erase the person (one transaction, with a receipt and an audit row), then go to the
    users list."""
    await require_role(request, "admin")
    user = await _user(pk)
    form = await request.form()
    if form.get("confirm") != user.email:
        raise HTTPException(
            status_code=HTTP_400_BAD_REQUEST,
            detail="Not erased: type the person's e-mail address to confirm.",
        )
    staff: User = request.state.admin
    try:
        async with connections.get("default").acquire_connection() as conn, conn.transaction():
            # The receipt says `studio: staff #<id>` (erase_person() writes it), never an e-mail.
            done = await privacy.erase_user_in(
                conn, user.email, "studio", actor=(staff.pk, staff.email)
            )
    except CoachDbError as exc:  # e.g. no erasure key configured: nothing was changed
        raise HTTPException(status_code=HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    await forget_login_failures(request, [user.email])
    return RedirectResponse(
        f"{request.app.admin_path}/user/list?erased={done.receipt_id}",
        status_code=HTTP_303_SEE_OTHER,
    )


async def _user(pk: str) -> User:
    try:
        key = params.parse_id(pk, User)
    except params.BadValue:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND) from None
    user = await User.get_or_none(pk=key)
    if user is None:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    return user
