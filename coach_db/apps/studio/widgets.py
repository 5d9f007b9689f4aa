"""The studio's displays, inputs and filters, built on fastapi-admin's widget classes.

Inputs turn bad form values into a `FormError` (shown on the form, never a 500); a filter
value that cannot be parsed is a 400 page naming the filter. Parsing itself is admin.params.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

from fastapi import HTTPException
from fastapi_admin.resources import ComputeField
from fastapi_admin.widgets import displays, filters, inputs
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.status import HTTP_400_BAD_REQUEST
from tortoise import connections
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from coach_db.apps.studio import params
from coach_db.passwords import hash_password


class FormError(ValueError):
    """A value a form field cannot take; the message is shown next to the field's label."""


class Keep:
    """Returned by an input whose empty value means "leave the stored value as it is"."""


KEEP = Keep()
# Longer passwords only make argon2 work longer; a passphrase is far shorter than this.
MAX_PASSWORD_CHARS = 1024
# Rows a foreign-key input suggests besides the current one: the form never grows with a table.
FOREIGN_KEY_SUGGESTIONS = 20
# Related rows counted per row of a list (a user's sessions): beyond, the list says "99+". A
# page of 200 rows then reads at most 20,000 index entries, whatever the table's size.
RELATED_COUNT_LIMIT = 99


def label_for(name: str) -> str:
    """`partner_system_prompt` -> `Partner system prompt`, `user_id` -> `User`, `is_staff` ->
    `Staff`, `duration_seconds` -> `Duration` (shown as h:mm:ss)."""
    name = name.removeprefix("is_").removesuffix("_id").removesuffix("_seconds")
    return name.replace("_", " ").capitalize().replace(" url", " URL")


def admin_url(request: Request, path: str) -> str:
    admin_path: str = request.app.admin_path
    return f"{admin_path}/{path}"


def resource_name(model: type[Model]) -> str:
    """fastapi-admin's URL name of a model: its class name in lower case."""
    return model.__name__.lower()


# --- displays -----------------------------------------------------------------------------


class Text(displays.Display):  # type: ignore[misc]
    """Plain text, cut to `max_chars` in lists; escaped by the compat shim.

    Long text (`wrap`: a TextField) wraps in a column of its own; a short one (a name, an
    e-mail, a model id) stays on one line, clipped with … at the column's width (base.html),
    whole in its tooltip: lists fit the window instead of scrolling sideways."""

    def __init__(self, max_chars: int = 80, wrap: bool = False) -> None:
        super().__init__()
        self.max_chars = max_chars
        self.wrap = wrap

    async def render(self, request: Request, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.max_chars:
            value = value[: self.max_chars - 1] + "…"
        shown = await super().render(request, value)
        if self.wrap:
            return Markup('<span class="studio-text">{}</span>').format(shown)
        title = value if isinstance(value, str) else ""
        return Markup('<span class="studio-clip" title="{}">{}</span>').format(title, shown)


class Badge(displays.Display):  # type: ignore[misc]
    """An enum value as a coloured badge."""

    template = "widgets/displays/badge.html"

    def __init__(self, colors: dict[str, str]) -> None:
        super().__init__(colors=colors)


class Link(displays.Display):  # type: ignore[misc]
    """A `(url, text)` pair as a link."""

    template = "widgets/displays/link.html"


def prefetched(request: Request) -> dict[Any, Any]:
    """What a list page loaded once for all its rows (labels, counts), kept on the request."""
    cache: dict[Any, Any] | None = getattr(request.state, "prefetched", None)
    if cache is None:
        cache = request.state.prefetched = {}
    return cache


def label_columns(model: type[Model]) -> list[str]:
    """The columns a row's str() reads: a scenario's prompts stay in the database."""
    return [n for n in ("id", "email", "name", "status") if n in model._meta.db_fields]


class Related(displays.Display):  # type: ignore[misc]
    """A foreign key id as a link to the related row, labelled with its `str()`."""

    template = "widgets/displays/link.html"

    def __init__(self, model: type[Model]) -> None:
        super().__init__()
        self.model = model

    async def prefetch(self, request: Request, ids: set[Any]) -> None:
        """Load the labels of a whole list page in one query, not one per row."""
        rows = await self.model.filter(pk__in=ids).only(*label_columns(self.model))
        prefetched(request).update({(self.model, row.pk): str(row) for row in rows})

    async def render(self, request: Request, value: Any) -> Any:
        if value is None:
            return await super().render(request, None)
        text = prefetched(request).get((self.model, value))
        if text is None:
            obj = await self.model.get_or_none(pk=value)
            text = str(obj) if obj is not None else f"#{value} (missing)"
        url = admin_url(request, f"{resource_name(self.model)}/update/{value}")
        return await super().render(request, (url, text))


class Duration(displays.Display):  # type: ignore[misc]
    """Seconds as h:mm:ss."""

    async def render(self, request: Request, value: Any) -> Any:
        if isinstance(value, int):
            hours, rest = divmod(value, 3600)
            value = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        return await super().render(request, value)


class RelatedRows(ComputeField):  # type: ignore[misc]
    """A list column linking to the rows that point at this one, with their count.

    The count is the row's own `count_field` when the database keeps one (a session's
    `total_messages`), else counted for the whole page in one query.
    """

    def __init__(
        self, label: str, model: type[Model], foreign_key: str, count_field: str | None = None
    ) -> None:
        super().__init__(name=f"{resource_name(model)}_{foreign_key}", label=label, display=Link())
        self.model = model
        self.foreign_key = foreign_key
        self.count_field = count_field

    async def prefetch(self, request: Request, ids: set[Any]) -> None:
        if self.count_field is not None:
            return
        counts = await related_counts(self.model, self.foreign_key, ids)
        prefetched(request).update({(self, pk): counts.get(pk, 0) for pk in ids})

    async def get_value(self, request: Request, obj: dict[str, Any]) -> tuple[str, str]:
        if self.count_field is not None:
            text = f"{obj[self.count_field]:,}"
        else:
            count = prefetched(request).get((self, obj["id"]))
            if count is None:
                count = (await related_counts(self.model, self.foreign_key, {obj["id"]}))[obj["id"]]
            text = count_label(count)
        url = admin_url(request, f"{resource_name(self.model)}/list?{self.foreign_key}={obj['id']}")
        return url, f"{text} →"


def count_label(count: int) -> str:
    """A count from related_counts: "12", or "99+" where counting stopped."""
    return f"{RELATED_COUNT_LIMIT:,}+" if count > RELATED_COUNT_LIMIT else f"{count:,}"


async def related_counts(model: type[Model], foreign_key: str, ids: set[int]) -> dict[int, int]:
    """The rows of `model` pointing at each of `ids`, each counted up to RELATED_COUNT_LIMIT + 1,
    in one statement: a GROUP BY counted all 321,000 sessions of a users page (issue 10)."""
    table = model._meta.db_table
    rows = await connections.get("default").execute_query_dict(
        f'SELECT k.id, (SELECT count(*) FROM (SELECT 1 FROM "{table}" WHERE "{foreign_key}" = k.id'
        " LIMIT $2) AS r) AS n FROM unnest($1::bigint[]) AS k(id)",
        [sorted(ids), RELATED_COUNT_LIMIT + 1],
    )
    return {row["id"]: row["n"] for row in rows}


class RowLink(ComputeField):  # type: ignore[misc]
    """A list column with a fixed link built from the row's id, e.g. the transcript."""

    def __init__(self, label: str, path: str, text: str) -> None:
        super().__init__(name=f"action_{text.lower()}", label=label, display=Link())
        self.path = path
        self.text = text

    async def get_value(self, request: Request, obj: dict[str, Any]) -> tuple[str, str]:
        return admin_url(request, self.path.format(id=obj["id"])), self.text


# --- inputs -------------------------------------------------------------------------------


class DateTime(inputs.Input):  # type: ignore[misc]
    """The browser's date-time picker; values are UTC."""

    template = "widgets/inputs/datetime.html"

    def __init__(self, null: bool = False, help_text: str | None = None) -> None:
        super().__init__(null=null, help_text=help_text or "UTC")

    async def render(self, request: Request, value: Any) -> Any:
        if isinstance(value, datetime):
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return await super().render(request, value)

    async def parse_value(self, request: Request, value: Any) -> Any:
        value = await super().parse_value(request, value)
        if value in (None, ""):
            if self.context.get("null"):
                return None
            raise FormError("a date and time is required")
        try:
            return params.parse_datetime(str(value))
        except params.BadValue as exc:
            raise FormError(str(exc)) from None


class Number(inputs.Number):  # type: ignore[misc]
    """A whole number; empty means NULL for a nullable field."""

    async def parse_value(self, request: Request, value: Any) -> Any:
        value = await super().parse_value(request, value)
        if value is None:
            return None
        text = str(value).strip()
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()) or int(digits) > params.INT4_MAX:
            raise FormError("not a whole number (digits 0-9, at most 2147483647)")
        return int(text)


class Choice(inputs.Enum):  # type: ignore[misc]
    """A select of a StrEnum's values; any other value is a form error."""

    def __init__(self, enum: type[Enum], default: Any = None) -> None:
        super().__init__(enum, default=default, enum_type=str)

    async def get_options(self) -> list[tuple[str, str]]:
        return [(member.value.capitalize(), member.value) for member in self.enum]

    async def parse_value(self, request: Request, value: Any) -> Any:
        try:
            return self.enum(value)
        except ValueError:
            allowed = ", ".join(member.value for member in self.enum)
            raise FormError(f"unknown value {str(value)[:40]!r} (allowed: {allowed})") from None


# What else than a row number a foreign-key input searches by (coach_db/apps/studio/lookup.py).
LOOKUP_HINTS = {"user": "an e-mail", "conversationsession": "a user's e-mail", "scenario": "a name"}


class ForeignKey(inputs.Input):  # type: ignore[misc]
    """A related row's number, suggesting the current row and the `limit` most recent ones.

    Never a select of the whole table: at 321,000 sessions that was a 28.5 MB form (issue 10).
    """

    template = "widgets/inputs/foreign_key.html"
    limit = FOREIGN_KEY_SUGGESTIONS

    def __init__(self, model: type[Model], null: bool = False) -> None:
        super().__init__(null=null, limit=self.limit)
        self.model = model

    async def render(self, request: Request, value: Any) -> Any:
        current: tuple[str, str] | None = None
        options = [(str(row), row.pk) for row in await self._recent()]
        if isinstance(value, int):
            row = await self.model.get_or_none(pk=value)
            if row is not None:
                current = (
                    admin_url(request, f"{resource_name(self.model)}/update/{value}"),
                    str(row),
                )
                if all(pk != value for _, pk in options):
                    options.insert(0, (str(row), value))
        self.context.update(
            options=options,
            current=current,
            lookup_url=admin_url(request, f"lookup/{resource_name(self.model)}"),
            lookup_hint=LOOKUP_HINTS.get(resource_name(self.model), "a number"),
        )
        return await super().render(request, value)

    async def _recent(self) -> list[Model]:
        query = self.model.all().order_by("-id").limit(self.limit)
        return await query.only(*label_columns(self.model))

    async def parse_value(self, request: Request, value: Any) -> Any:
        if value in (None, "") and self.context.get("null"):
            return None
        try:
            pk = params.parse_id(value, self.model)
        except params.BadValue:
            raise FormError("type a row number (#, digits 0-9)") from None
        if not await self.model.exists(pk=pk):
            raise FormError(f"there is no row #{pk}")
        return pk


class Json(inputs.Json):  # type: ignore[misc]
    """A JSON object edited with jsoneditor; anything but a JSON object is a form error."""

    async def render(self, request: Request, value: Any) -> Any:
        # The JSON text goes into an autoescaped attribute, read by the page's script; upstream
        # writes it unescaped into the attribute and into a <script> (stored XSS).
        if not isinstance(value, str):  # a str is text re-shown after a form error
            value = json.dumps(value if value is not None else {}, indent=2)
        return await inputs.Input.render(self, request, value)

    async def parse_value(self, request: Request, value: Any) -> Any:
        try:
            return params.parse_metadata(str(value or ""))
        except params.BadValue as exc:
            raise FormError(str(exc)) from None


class NewPassword(inputs.Password):  # type: ignore[misc]
    """Sets the password: hashed with coach_db.passwords; empty keeps the current one."""

    def __init__(self) -> None:
        super().__init__(
            null=True, help_text="Leave empty to keep the current password (at least 8 characters)"
        )

    async def render(self, request: Request, value: Any) -> Any:
        return await super().render(request, None)  # never echo a hash or a password back

    async def parse_value(self, request: Request, value: Any) -> Any:
        if not value:
            return KEEP
        if len(str(value)) < 8:
            raise FormError("must have at least 8 characters")
        if len(str(value)) > MAX_PASSWORD_CHARS:
            raise FormError(f"may have at most {MAX_PASSWORD_CHARS} characters")
        return await run_in_threadpool(hash_password, str(value))


# --- filters ------------------------------------------------------------------------------


class BadFilter(HTTPException):
    """A filter value the list cannot use: a 400 page naming the filter, never a 500."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(HTTP_400_BAD_REQUEST, f"The filter \u201c{label}\u201d: {reason}.")


class StudioFilter(filters.Filter):  # type: ignore[misc]
    """A list filter: its value is parsed by `parse` (from admin.params) or refused with a 400."""

    async def parse_value(self, request: Request, value: Any) -> Any:
        try:
            return self.parse(value)
        except params.BadValue as exc:
            raise BadFilter(self.context["label"], str(exc)) from None

    def parse(self, value: Any) -> Any:
        return params.parse_filter_text(value)

    # Set by the list's resource (StudioModel.leading): which filtered column leads its order.
    leading: Callable[[Iterable[str]], tuple[str, ...]] | None = None

    def leads_order(self, request: Request) -> bool:
        """Whether this filter's column leads the list's order (pages.Sort.fixed), as the list
        view decides it from the filters in use (those with a value)."""
        if self.leading is None:
            return False
        filtered = (name for name, value in request.query_params.items() if value != "")
        return self.leading(filtered) == (self.context["name"],)

    async def get_queryset(self, request: Request, value: Any, qs: QuerySet[Any]) -> Any:
        parsed = await self.parse_value(request, value)
        name = self.context["name"]
        if self.leads_order(request):
            # `status IN (v, v)`, not `status = v`. PostgreSQL makes an equality's column a
            # constant, and then ORDER BY (status, started_at, id) is just (started_at, id):
            # with a cursor it walked the started_at index past 136,488 sessions for the
            # active ones (21 ms at 10M; it assumes them spread evenly, they are the newest)
            # instead of reading (status, started_at, id) from the cursor (0.1 ms). An array
            # test keeps the column in the order, which only that index gives without a sort.
            # One column only: two such columns in the order match no index (a sort of every
            # session of the user, 26 ms, where the user's index alone took 0.1 ms).
            return qs.filter(**{f"{name}__in": [parsed, parsed]})
        return qs.filter(**{name: parsed})


class Search(StudioFilter):
    """Case-insensitive substring search over several text columns."""

    template = "widgets/filters/search.html"

    def __init__(self, fields: tuple[str, ...], label: str = "Search") -> None:
        super().__init__(name="q", label=label, placeholder=" / ".join(fields))
        self.fields = fields

    async def get_queryset(self, request: Request, value: Any, qs: QuerySet[Any]) -> Any:
        text = await self.parse_value(request, value)
        query = Q(*(Q(**{f"{field}__icontains": text}) for field in self.fields), join_type="OR")
        return qs.filter(query)


class Id(StudioFilter):
    """Rows pointing at one related row, e.g. `user_id=3`: the target of relation links."""

    template = "widgets/filters/search.html"

    def __init__(self, model: type[Model], name: str, label: str) -> None:
        super().__init__(name=name, label=label, placeholder="#")
        self.model = model

    def parse(self, value: Any) -> Any:
        return params.parse_id(value, self.model)


class YesNo(StudioFilter, filters.Select):  # type: ignore[misc]
    """True, false or any, for a boolean column."""

    template = "widgets/filters/select.html"

    def __init__(self, name: str, label: str) -> None:
        super().__init__(name=name, label=label)

    async def get_options(self) -> list[tuple[str, str]]:
        return [("Any", ""), ("Yes", "true"), ("No", "false")]

    def parse(self, value: Any) -> Any:
        if value not in ("true", "false"):
            raise params.BadValue("choose yes or no")
        return value == "true"

    async def render(self, request: Request, value: Any) -> Any:
        return await super().render(request, {True: "true", False: "false"}.get(value, ""))


class OneOf(StudioFilter, filters.Select):  # type: ignore[misc]
    """One value of a StrEnum."""

    template = "widgets/filters/select.html"

    def __init__(self, enum: type[Enum], name: str, label: str) -> None:
        super().__init__(name=name, label=label)
        self.enum = enum

    async def get_options(self) -> list[tuple[str, str]]:
        return [("Any", ""), *((m.value.capitalize(), m.value) for m in self.enum)]

    def parse(self, value: Any) -> Any:
        try:
            return self.enum(value).value
        except ValueError:
            raise params.BadValue("not one of the listed values") from None


class RelatedRow(StudioFilter, filters.Select):  # type: ignore[misc]
    """A select of the rows of a small related table (scenarios)."""

    template = "widgets/filters/select.html"

    def __init__(self, model: type[Model], name: str, label: str) -> None:
        super().__init__(name=name, label=label)
        self.model = model

    async def get_options(self) -> list[tuple[str, Any]]:
        return [("Any", ""), *((str(row), row.pk) for row in await self.model.all())]

    def parse(self, value: Any) -> Any:
        return params.parse_id(value, self.model)


class Since(StudioFilter):
    """Rows on or after a day (UTC), with the browser's date picker."""

    template = "widgets/filters/date.html"
    lookup = "gte"

    def __init__(self, field: str, label: str) -> None:
        super().__init__(name=f"{field}__{self.lookup}", label=label)

    def parse(self, value: Any) -> Any:
        return params.parse_filter_date(value)

    def bound(self, day: date) -> datetime | None:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    async def get_queryset(self, request: Request, value: Any, qs: QuerySet[Any]) -> Any:
        bound = self.bound(await self.parse_value(request, value))
        if bound is None:  # the end of 9999-12-31: every row is before it
            return qs
        return qs.filter(**{self.context["name"]: bound})


class Until(Since):
    """Rows on or before a day (UTC): the whole day is included."""

    lookup = "lt"

    def bound(self, day: date) -> datetime | None:
        if day == date.max:
            return None
        start = super().bound(day)
        assert start is not None
        return start + timedelta(days=1)
