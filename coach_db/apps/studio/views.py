"""Studio pages beyond fastapi-admin's: dashboard, transcript, and safe save / delete handlers.

These routes are matched before fastapi-admin's own. The list keeps fastapi-admin's view (with
a validated page size); saving and deleting are replaced because upstream turns every bad
value or constraint violation into a 500 and cannot clear a nullable field.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi_admin.depends import get_model, get_model_resource, get_resources
from fastapi_admin.resources import ComputeField, render_values
from fastapi_admin.resources import Model as ModelResource
from fastapi_admin.widgets import inputs
from starlette.datastructures import FormData
from starlette.status import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_CONTENT,
)
from tortoise import connections
from tortoise.exceptions import IntegrityError, ValidationError
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coach_db import conversations
from coach_db.apps.studio import audit, lookup, pages, params, roles, search, widgets
from coach_db.apps.studio.auth import forget_login_failures, require_staff
from coach_db.apps.studio.resources import StudioModel
from coach_db.apps.studio.templating import render
from coach_db.cache import invalidate_scenarios
from coach_db.errors import SessionChanged
from coach_db.limits import (
    MAX_CONTENT_CHARS,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_TRANSCRIPT_PAGE,
)
from coach_db.models import (
    AuditAction,
    ConversationSession,
    Message,
    Scenario,
    SessionStatus,
    User,
)

router = APIRouter(dependencies=[Depends(require_staff)])
# fastapi-admin's dependencies: the Tortoise model, the sidebar entries, the resource.
ModelOf = Annotated[Any, Depends(get_model)]
Sidebar = Annotated[Any, Depends(get_resources)]
ResourceOf = Annotated[ModelResource, Depends(get_model_resource)]

MAX_PAGE_SIZE = 200
DASHBOARD_DAYS = 30
# asyncpg's detail for a unique violation: 'Key (email)=(a@b.c) already exists.'
_DUPLICATE_KEY = re.compile(r"Key \((?P<column>[^)]+)\)=")
# Optimistic concurrency: an edit form carries the row's version as it was when the form was
# opened (a hidden field); the save is refused when the row has changed since.
ROW_VERSION = "row_version"
CHANGED_ELSEWHERE = (
    "This row was changed by someone else since you opened it: nothing was saved. The form now "
    "shows the current values; make your change again."
)
# The CHECK constraints of migrations/, in words (the database has the last say).
_CONSTRAINTS = {
    "user_email_format": "Email: not an e-mail address.",
    "user_username_not_blank": "Username: may not be blank.",
    "scenario_slug_format": "Slug: lowercase letters, digits and single hyphens only.",
    "scenario_name_not_blank": "Name: may not be blank.",
    "conversation_session_status_valid": "Status: not one of the allowed values.",
    "conversation_session_total_messages_nonnegative": "Total messages: may not be negative.",
    "conversation_session_duration_nonnegative": "Duration: may not be negative.",
    "conversation_session_ended_after_started": "Ended at: may not be before the start.",
    "message_role_valid": "Role: not one of the allowed values.",
    "message_content_not_empty": "Content: may not be empty.",
    "message_metadata_is_object": "Metadata: must be a JSON object.",
    "conversation_session_ended_at_matches_status": (
        "Ended at: only a completed or abandoned session has an end time; clear it to reopen."
    ),
    "conversation_session_duration_spans_start_to_end": (
        "Duration: it is computed from the start and end times."
    ),
    "message_not_after_session_end": (
        "Session: it has ended and no message may come after its end (to add one, reopen the "
        "session first)."
    ),
    "user_email_lower_trimmed": "Email: must be lower case, without surrounding spaces.",
    "message_content_max_chars": f"Content: longer than {MAX_CONTENT_CHARS:,} characters.",
    "message_metadata_max_bytes": f"Metadata: larger than {MAX_METADATA_BYTES:,} bytes.",
    "message_metadata_max_depth": f"Metadata: nested deeper than {MAX_METADATA_DEPTH} levels.",
    "conversation_session_version_current": CHANGED_ELSEWHERE,
}


async def _get_row(model: type[Model], pk: str) -> Model:
    """The row with this primary key, or a 404 (upstream: a 500 for a missing, non-numeric or
    out-of-range id, and a full-width digit read as a digit)."""
    try:
        key = params.parse_id(pk, model)
    except params.BadValue:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND) from None
    obj = await model.get_or_none(pk=key)
    if obj is None:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    return obj


@router.get("/")
async def dashboard(request: Request, resources: Sidebar) -> Response:
    """The figures come from the rollups of migration 5 (a few hundred rows whatever the
    tables' size) and indexes: at 10M messages, counting sessions by status and averaging their
    durations scanned 321,000 sessions on every view."""
    by_status, average = await _sessions_by_status()
    context = {
        "resources": resources,
        "resource_label": "Dashboard",
        "page_pre_title": "Overview",
        "page_title": "Dashboard",
        "users": await User.all().count(),
        "staff": await User.filter(is_staff=True).count(),
        "active_scenarios": await Scenario.filter(is_active=True).count(),
        "scenarios": await Scenario.all().count(),
        "sessions_by_status": by_status,
        "sessions": sum(by_status.values()),
        "messages_per_day": await _messages_per_day(),
        # For an empty chart: says whether there are older messages (the demo data is dated
        # in the past so that its seed always gives the same rows).
        "latest_message": (
            await Message.all().order_by("-timestamp").first().values_list("timestamp", flat=True)
        ),
        "average_seconds": average,
    }
    return render(request, "dashboard.html", context)


async def _sessions_by_status() -> tuple[dict[str, int], int | None]:
    """Sessions per status (every status, 0 when none) and the average duration in whole
    seconds of those that have one, from the rollup session_by_status (migration 5)."""
    rows = await connections.get("default").execute_query_dict(
        'SELECT "status", sum("sessions") AS sessions, sum("timed") AS timed,'
        ' sum("duration_seconds") AS seconds FROM "session_by_status" GROUP BY "status"'
    )
    by_status = dict.fromkeys((s.value for s in SessionStatus), 0)
    by_status.update({row["status"]: int(row["sessions"]) for row in rows if row["sessions"]})
    timed = sum(int(row["timed"]) for row in rows)
    seconds = sum(int(row["seconds"]) for row in rows)
    return by_status, round(seconds / timed) if timed else None


async def _messages_per_day(today: date | None = None) -> list[tuple[date, int]]:
    """Messages per UTC day for the last 30 days, today included, with empty days as 0, from
    the rollup message_daily (migration 5)."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=DASHBOARD_DAYS - 1)
    rows = await connections.get("default").execute_query_dict(
        'SELECT "day", sum("messages") AS n FROM "message_daily" WHERE "day" >= $1 GROUP BY 1',
        [first],
    )
    counts = {row["day"]: int(row["n"]) for row in rows}
    return [
        (day, counts.get(day, 0))
        for day in (first + timedelta(days=i) for i in range(DASHBOARD_DAYS))
    ]


@router.get("/conversationsession/transcript/{pk}")
async def transcript(
    request: Request,
    pk: str,
    resources: Sidebar,
    after: str | None = None,
    before: str | None = None,
    end: str | None = None,
) -> Response:
    """One page of MAX_TRANSCRIPT_PAGE messages: the first, the one after/before a message id,
    or the last (`end`); keyset paging by (timestamp, id), so no page grows with the session."""
    session = await _get_row(ConversationSession, pk)
    assert isinstance(session, ConversationSession)
    await session.fetch_related("user", "scenario", "scenario_version")
    page = MAX_TRANSCRIPT_PAGE
    if after is not None:
        cursor = await _message_cursor(session, after)
        messages = await conversations.transcript(session, after=cursor, limit=page)
    elif before is not None:
        cursor = await _message_cursor(session, before)
        messages = await conversations.transcript(session, before=cursor, limit=page)
    elif end is not None:
        messages = await conversations.transcript(session, before=_END, limit=page)
    else:
        messages = await conversations.transcript(session, limit=page)
    # Who read whose conversation (issue 13).
    await audit.record(request, AuditAction.VIEW, ConversationSession, session.pk, session.user_id)
    earlier = later = False
    if messages:
        earlier = bool(await conversations.transcript(session, before=messages[0], limit=1))
        later = bool(await conversations.transcript(session, after=messages[-1], limit=1))
    context = {
        "resources": resources,
        "resource_label": "Sessions",
        "page_pre_title": f"{session.scenario} · {session.user}",
        "page_title": f"Transcript of session #{session.pk}",
        "session": session,
        "messages": messages,
        "earlier": earlier,
        "later": later,
    }
    return render(request, "transcript.html", context)


# After every message: the cursor of the transcript's last page.
_END = (datetime(9999, 12, 31, tzinfo=UTC), 2**63 - 1)


async def _message_cursor(session: ConversationSession, value: str) -> tuple[datetime, int]:
    """(timestamp, id) of a message of this session named in the query string, else a 404."""
    if not (value.isascii() and value.isdigit() and len(value) < 19):
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    found = await Message.filter(id=int(value), session_id=session.pk).values_list(
        "timestamp", "id"
    )
    if not found:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    timestamp, message_id = found[0]
    return timestamp, message_id


@router.get("/lookup/{resource}")
async def lookup_view(resource: str, q: str = "") -> JSONResponse:
    """The foreign-key inputs' autocomplete (lookup.py): at most 20 rows as JSON."""
    model = lookup.LOOKUPS.get(resource)
    if model is None:
        raise HTTPException(status_code=HTTP_404_NOT_FOUND)
    try:
        found = await lookup.lookup(model, q)
    except params.BadValue as exc:
        return JSONResponse({"error": f"q: {exc}"}, HTTP_400_BAD_REQUEST)
    return JSONResponse({"results": found})


@router.get("/{resource}/list")
async def list_view(
    request: Request,
    resource: str,
    model: ModelOf,
    resources: Sidebar,
    model_resource: ResourceOf,
) -> Response:
    """fastapi-admin's list as keyset pages (first / previous / next / last, admin.pages), with
    a capped count and a fixed number of statements per page: the related rows' labels and
    counts are loaded once for all rows (upstream ran one query per row and column)."""
    query = request.query_params
    page_size = params.parse_page(query.get("page_size"), model_resource.page_size, MAX_PAGE_SIZE)
    fields = model_resource.get_fields()
    assert isinstance(model_resource, StudioModel)
    sort = pages.Sort.parse(model_resource.sort_of(query.get("sort")))
    filter_values, qs = await list_queryset(request, model_resource, model)
    fixed = model_resource.leading(filter_values)
    sort = dataclasses.replace(sort, fixed=fixed)
    filters = await model_resource.get_filters(request, filter_values)
    walked = search.walked(request)

    async def read(qs: QuerySet[Any]) -> pages.Page:
        return await pages.read_page(
            request,
            model,
            qs,
            sort,
            page_size,
            _list_columns(model, fields, sort),
            narrow=walked.apply if walked else None,
            window=search.WALK_WINDOW,
        )

    try:
        if search.by_ids(request):
            async with in_transaction("default") as conn:  # named: replicas are connections too
                await conn.execute_script(search.BITMAP_ONLY)
                page = await read(qs.using_db(conn))
        else:
            page = await read(qs)
    except params.BadValue as exc:
        raise HTTPException(
            HTTP_400_BAD_REQUEST,
            f"This page link is not valid ({exc}). Start again from the list's first page.",
        ) from None
    rows = page.rows
    if model is Message:  # its content column: who read whose conversation (issue 18)
        await audit.record_message_reads(request, [row["id"] for row in rows], "message list")
    count_note = None
    if walked is not None and page.complete:
        total_text = f"{len(rows):,}"
    elif walked is not None:  # common words: counting would walk every match (or every row)
        total_text = ""
        count_note = (
            f"Common words: matches are not counted, and each page looks through at most"
            f" {search.WALK_WINDOW:,} messages."
        )
        if page.looked_through:
            count_note = (
                f"No {'more ' if rows else ''}matches in the {page.looked_through:,} messages"
                " looked through for this page; the pager's link goes on from there (or narrow"
                " the search: more words, a session, a date range)."
            )
    else:
        total_text = await pages.count_text(
            request,
            model,
            qs,
            filtered=bool(filter_values),
            cap=model_resource.count_limit(request, filter_values),
            unindexed=any(name not in fixed for name in filter_values),
        )
    await _prefetch(request, fields, rows)
    shown = [model_resource.list_row(row) for row in rows]
    rendered_values, row_attributes, column_attributes, cell_attributes = await render_values(
        request, model_resource, fields, shown
    )
    context = {
        "resources": resources,
        "fields_label": model_resource.get_fields_label(),
        "fields": fields,
        "values": rows,
        "row_attributes": row_attributes,
        "column_attributes": column_attributes,
        "cell_attributes": cell_attributes,
        "rendered_values": rendered_values,
        "filters": filters,
        "resource": resource,
        "model_resource": model_resource,
        # Per request, not the resource's shared attributes: they depend on the user's role.
        "actions": await model_resource.get_actions(request),
        "bulk_actions": await model_resource.get_bulk_actions(request),
        "toolbar_actions": await model_resource.get_toolbar_actions(request),
        "resource_label": model_resource.label,
        "page_size": page_size,
        "page": page,
        "list_url": lambda **changes: pages.list_url(request, **changes),
        "sort": f"{'-' if sort.descending else ''}{sort.column}",
        "total_text": total_text,
        "count_note": count_note,
        "one_row": total_text == "1",
        "page_title": model_resource.page_title,
        "page_pre_title": model_resource.page_pre_title,
    }
    return render(request, "list.html", context)


async def list_queryset(
    request: Request, model_resource: StudioModel, model: type[Model]
) -> tuple[dict[str, Any], QuerySet[Any]]:
    """The WHERE of a list: its filters and search (`q`) applied to the whole table, before
    the page's order and cursor. Returns the filter values in use and the query set."""
    values, qs = await model_resource.resolve_query_params(
        request, dict(request.query_params), model.all()
    )
    return values, qs


def _list_columns(model: type[Model], fields: list[Any], sort: pages.Sort) -> list[str]:
    """The columns a list shows (and the counts it reads, and its sort key): long texts shown
    only in the form stay in the database."""
    columns = {"id", sort.column}
    for field in fields:
        if isinstance(field, widgets.RelatedRows) and field.count_field:
            columns.add(field.count_field)
        elif not isinstance(field, ComputeField) and field.name in model._meta.db_fields:
            columns.add(field.name)
    return sorted(columns)


async def _prefetch(request: Request, fields: list[Any], rows: list[dict[str, Any]]) -> None:
    """One query per related column for the whole page (labels of foreign keys, counts)."""
    if not rows:
        return
    for field in fields:
        if isinstance(field, widgets.RelatedRows):
            await field.prefetch(request, {row["id"] for row in rows})
        elif isinstance(field.display, widgets.Related):
            ids = {row[field.name] for row in rows if row.get(field.name) is not None}
            if ids:
                await field.display.prefetch(request, ids)


@router.get("/{resource}/update/{pk}")
async def update_view(
    request: Request,
    resource: str,
    pk: str,
    model: ModelOf,
    resources: Sidebar,
    model_resource: ResourceOf,
) -> Response:
    obj = await _get_row(model, pk)
    if isinstance(obj, Message):  # a message's form shows its content: a transcript view
        owner = await ConversationSession.filter(id=obj.session_id).values_list("user_id")
        await audit.record(request, AuditAction.VIEW, Message, obj.pk, owner[0][0])
    return await _form_page(request, resource, model_resource, resources, obj=obj)


@router.get("/{resource}/create")
async def create_view(
    request: Request,
    resource: str,
    resources: Sidebar,
    model_resource: ResourceOf,
) -> Response:
    return await _form_page(request, resource, model_resource, resources)


@router.post("/{resource}/create")
async def create(
    request: Request,
    resource: str,
    model: ModelOf,
    resources: Sidebar,
    model_resource: ResourceOf,
) -> Response:
    form = await request.form()
    obj, errors = await _save(request, model_resource, model, form)
    if obj is None:
        return await _form_page(
            request, resource, model_resource, resources, form=form, errors=errors
        )
    if "save_and_add_another" in form:
        return _see_other(f"{request.app.admin_path}/{resource}/create?saved={obj.pk}")
    return _see_other(f"{request.app.admin_path}/{resource}/update/{obj.pk}?saved=1")


@router.post("/{resource}/update/{pk}")
async def update(
    request: Request,
    resource: str,
    pk: str,
    model: ModelOf,
    resources: Sidebar,
    model_resource: ResourceOf,
) -> Response:
    stored = await _get_row(model, pk)
    form = await request.form()
    obj, errors = await _save(request, model_resource, model, form, stored)
    if obj is None:
        stored = await _get_row(model, pk)  # as it is in the database: untouched
        if errors == [CHANGED_ELSEWHERE]:  # show the current row (and version), not the form
            return await _form_page(
                request, resource, model_resource, resources, obj=stored, errors=errors
            )
        return await _form_page(
            request, resource, model_resource, resources, obj=stored, form=form, errors=errors
        )
    if "save_and_return" in form:
        return _see_other(f"{request.app.admin_path}/{resource}/list")
    return _see_other(f"{request.app.admin_path}/{resource}/update/{obj.pk}?saved=1")


# The resource dependency refuses a model that is not a studio resource (404): upstream deletes
# rows of any Tortoise model, the migration history included (`DELETE /admin/aerich/delete/1`).
@router.delete("/{resource}/delete/{pk}")
async def delete(request: Request, pk: str, model: ModelOf, _: ResourceOf) -> Response:
    obj = await _get_row(model, pk)
    return await _delete(request, model, [obj.pk])


@router.delete("/{resource}/delete")
async def bulk_delete(request: Request, model: ModelOf, _: ResourceOf, ids: str = "") -> Response:
    try:
        keys = [params.parse_id(part.strip(), model) for part in ids.split(",") if part.strip()]
    except params.BadValue:
        return JSONResponse(
            {"error": "ids must be a comma-separated list of row numbers (digits 0-9)"},
            HTTP_400_BAD_REQUEST,
        )
    return await _delete(request, model, keys)


async def _delete(request: Request, model: type[Model], keys: list[int]) -> Response:
    try:
        async with in_transaction("default"):  # named: replicas are connections too
            rows = await model.filter(pk__in=keys).values()
            cascaded = await audit.cascade_counts(model, keys)  # before they go
            deleted = await model.filter(pk__in=keys).delete()
            await audit.record_deletes(request, model, rows, cascaded)
    except IntegrityError as exc:
        return JSONResponse({"error": _refused_delete(model, exc)}, HTTP_409_CONFLICT)
    if model is User:
        await forget_login_failures(request, [row["email"] for row in rows])
    await _committed(model)
    return JSONResponse({"deleted": deleted})


def _refused_delete(model: type[Model], exc: IntegrityError) -> str:
    """Why the database refused a delete: rows pointing at it (a RESTRICT foreign key, which
    PostgreSQL 15 reports as foreign_key_violation and 18 as restrict_violation), or another
    constraint, such as one on the audit row the delete writes, named as PostgreSQL names it."""
    cause = exc.__cause__
    if isinstance(cause, asyncpg.ForeignKeyViolationError | asyncpg.RestrictViolationError):
        return (
            f"Not deleted: other rows still point at this {model.__name__}. "
            "Delete those first (or deactivate it instead)."
        )
    constraint = getattr(cause, "constraint_name", None)
    named = f" ({constraint})" if constraint else ""
    return f"Not deleted: the database refused the change{named}. Nothing was deleted."


async def _save(
    request: Request,
    model_resource: ModelResource,
    model: type[Model],
    form: FormData,
    obj: Model | None = None,
) -> tuple[Model | None, list[str]]:
    """Create a row of `model` (or update `obj`) from the form, in one transaction.

    Returns the saved row, or None and the reasons it was refused; then nothing changed.
    """
    values, errors = await _parse_form(request, model_resource, form)
    if errors:
        return None, errors
    try:
        async with in_transaction("default"):  # named: replicas are connections too
            if obj is None:
                obj = await model.create(**values)
                await audit.record_save(request, obj, None)
            else:
                # Locked until the commit: nobody writes between this comparison and the save.
                if await _row_version(model, obj.pk, lock=True) != form.get(ROW_VERSION):
                    return None, [CHANGED_ELSEWHERE]
                await obj.refresh_from_db()
                before = audit.snapshot(obj)
                password = getattr(obj, audit.PASSWORD_FIELD, None)
                await obj.update_from_dict(values).save()
                await audit.record_save(request, obj, before, password)
    except SessionChanged:
        return None, [CHANGED_ELSEWHERE]
    except (IntegrityError, ValidationError, ValueError) as exc:
        return None, [_explain(model_resource, exc)]
    await _committed(model)
    return obj, []


async def _committed(model: type[Model]) -> None:
    """After a committed write: the package's scenario cache must not serve the old rows (the
    save signal fired inside the transaction, before the commit, see coach_db.cache)."""
    if model is Scenario:
        await invalidate_scenarios()


async def _row_version(model: type[Model], pk: Any, lock: bool = False) -> str | None:
    """The row's version token: its `version` column where the model has one (sessions: the
    message counters do not bump it), else PostgreSQL's xmin, which every UPDATE changes."""
    column = '"version"' if "version" in model._meta.fields_map else "xmin"
    rows = await connections.get("default").execute_query_dict(
        f'SELECT {column}::text AS v FROM "{model._meta.db_table}" WHERE "{model._meta.pk_attr}"'
        f" = $1{' FOR UPDATE' if lock else ''}",
        [pk],
    )
    return str(rows[0]["v"]) if rows else None


async def _parse_form(
    request: Request, model_resource: ModelResource, form: FormData
) -> tuple[dict[str, Any], list[str]]:
    """Each input's parsed value, and one readable message per bad value."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for field in model_resource.get_fields(is_display=False):
        input_ = field.input
        if isinstance(input_, inputs.DisplayOnly) or input_.context.get("disabled"):
            continue
        try:
            raw = _checked_text(model_resource.model, field.name, form.get(field.name))
            value = await input_.parse_value(request, raw)
        except (widgets.FormError, ValueError) as exc:
            errors.append(f"{field.label}: {exc}")
            continue
        if value is not widgets.KEEP:
            values[field.name] = value
    if not errors and isinstance(model_resource, StudioModel):
        try:
            values = await model_resource.clean(request, values)
        except widgets.FormError as exc:
            errors.append(str(exc))
    return values, errors


def _checked_text(model: type[Model], name: str, raw: Any) -> Any:
    """A form value as text the column can hold: no NUL or lone surrogate, not too long.

    A file upload (a multipart body sent to a text field) is refused too: no input takes one.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise widgets.FormError("expected text, not a file")
    params.check_text(raw)
    column = model._meta.fields_map.get(name)
    # (An enum column's length is no message for a user: its select says what is allowed.)
    limit = (
        None if isinstance(column, CharEnumFieldInstance) else getattr(column, "max_length", None)
    )
    if model is Message and name == "content":
        limit = MAX_CONTENT_CHARS
    if limit is not None and len(raw) > limit:
        raise widgets.FormError(f"at most {limit} characters (this has {len(raw)})")
    return raw


def _explain(model_resource: ModelResource, exc: Exception) -> str:
    """A database refusal in words a staff member can act on."""
    if isinstance(exc, IntegrityError):
        cause = exc.__cause__
        constraint = getattr(cause, "constraint_name", None)
        if constraint in _CONSTRAINTS:
            return _CONSTRAINTS[constraint]
        detail = str(getattr(cause, "detail", "") or exc)
        if match := _DUPLICATE_KEY.search(detail):
            return f"{widgets.label_for(match['column'])}: another row already has this value."
        return f"The database refused the change: {getattr(cause, 'message', exc)}"
    if isinstance(exc, ValidationError):  # a model validator, e.g. "slug: Value ... regex ..."
        name, _, detail = str(exc).partition(": ")
        field = model_resource.model._meta.fields_map.get(name)
        if field is not None:
            if "regex" in detail:
                detail = f"not in the required form ({field.description or 'see the hint'})"
            return f"{widgets.label_for(name)}: {detail}"
    return f"Not saved: {exc}"


async def _form_page(
    request: Request,
    resource: str,
    model_resource: ModelResource,
    resources: Any,
    *,
    obj: Model | None = None,
    form: FormData | None = None,
    errors: list[str] | None = None,
) -> Response:
    """The create or edit form; after a refused save it shows what was typed and why."""
    rendered = []
    for field in model_resource.get_fields(is_display=False):
        input_ = field.input
        if isinstance(input_, inputs.DisplayOnly):
            continue
        value = getattr(obj, field.name, None)
        if form is not None:
            value = await _typed_value(request, input_, form.get(field.name), value)
        rendered.append(await input_.render(request, value))
    links = await model_resource.related_links(request, obj) if obj is not None else []
    if obj is not None:
        links.append(
            ("ti ti-history", "History", f"{request.app.admin_path}/{resource}/history/{obj.pk}")
        )
        if isinstance(obj, User):
            links.append(
                (
                    "ti ti-eraser",
                    "Erase this person…",
                    f"{request.app.admin_path}/user/erase/{obj.pk}",
                )
            )
    context = {
        "resources": resources,
        "resource_label": model_resource.label,
        "resource": resource,
        "model_resource": model_resource,
        "inputs": rendered,
        "pk": obj.pk if obj is not None else None,
        "obj": obj,
        "links": links,
        "errors": errors or [],
        # A role that may not change these rows sees the form read-only, without buttons.
        "read_only": not roles.may_write(request, resource),
        # After a refused save, the version the form was opened at: still checked on resubmit.
        "row_version": (
            None
            if obj is None
            else form.get(ROW_VERSION)
            if form is not None
            else await _row_version(model_resource.model, obj.pk)
        ),
        "saved": request.query_params.get("saved"),
        "page_title": model_resource.page_title,
        "page_pre_title": model_resource.page_pre_title,
    }
    status_code = HTTP_422_UNPROCESSABLE_CONTENT if errors else 200
    if errors == [CHANGED_ELSEWHERE]:
        status_code = HTTP_409_CONFLICT
    return render(request, "form.html", context, status_code)


async def _typed_value(request: Request, input_: inputs.Input, raw: Any, stored: Any) -> Any:
    """What to show again in a field after a refused save: the parsed value when it parses."""
    if isinstance(input_, widgets.NewPassword):
        return None
    if isinstance(input_, inputs.Switch):
        return raw == "on"
    if isinstance(input_, widgets.Json):
        return raw if raw is not None else stored
    try:
        return await input_.parse_value(request, raw)
    except (widgets.FormError, ValueError):
        return raw


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=HTTP_303_SEE_OTHER)
