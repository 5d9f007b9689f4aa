"""One fastapi-admin resource per model: list columns, filters, form widgets (like admin.py)."""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

from collections.abc import Iterable
from typing import Any

from email_validator import EmailNotValidError, validate_email
from fastapi_admin.enums import Method
from fastapi_admin.resources import Action, Field, ToolbarAction
from fastapi_admin.resources import Model as ModelResource
from fastapi_admin.widgets import displays, inputs
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.status import HTTP_400_BAD_REQUEST
from tortoise import fields as tortoise_fields
from tortoise.models import Model

from coach_db.apps.studio import roles, search, widgets
from coach_db.models import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    ScenarioVersion,
    SessionStatus,
    StaffRole,
    User,
)

STATUS_COLORS = {"active": "blue", "completed": "green", "abandoned": "secondary"}
ROLE_COLORS = {"user": "blue", "partner": "purple", "coach": "orange"}
STAFF_ROLE_COLORS = {"viewer": "secondary", "editor": "blue", "admin": "red"}


# Minutes are enough in a list (the form shows seconds): a column 20% narrower.
LIST_DATETIME = "%Y-%m-%d %H:%M"


def field_for(model: type[Model], name: str, **display_options: Any) -> Field:
    """The list display and form input of one model field, chosen by its type."""
    field = model._meta.fields_map[name]
    label = widgets.label_for(name)
    hint = field.description
    null = field.null
    display: displays.Display = widgets.Text(wrap=isinstance(field, tortoise_fields.TextField))
    input_: inputs.Input
    if field.pk or field.generated:
        display, input_ = displays.Display(), inputs.DisplayOnly()
    elif isinstance(field, tortoise_fields.BooleanField):
        display, input_ = displays.Boolean(), inputs.Switch(default=field.default, help_text=hint)
    elif isinstance(field, tortoise_fields.DatetimeField):
        display = displays.DatetimeDisplay(format_=LIST_DATETIME)
        if field.auto_now or field.auto_now_add:
            input_ = inputs.DisplayOnly()
        else:
            input_ = widgets.DateTime(null=null)
    elif isinstance(field, tortoise_fields.data.CharEnumFieldInstance):
        display = widgets.Badge(display_options.get("colors", {}))
        input_ = widgets.Choice(field.enum_type, default=field.default)
    elif isinstance(field, tortoise_fields.JSONField):
        display, input_ = displays.Json(), widgets.Json(null=null, help_text=hint)
    elif isinstance(field, tortoise_fields.TextField):
        input_ = inputs.TextArea(null=null, help_text=hint)
    elif isinstance(field, tortoise_fields.IntField):
        display = widgets.Duration() if name.endswith("_seconds") else displays.Display()
        input_ = widgets.Number(null=null, default=field.default, help_text=hint)
    elif isinstance(field, tortoise_fields.relational.ForeignKeyFieldInstance):
        related = field.related_model
        display, input_ = widgets.Related(related), widgets.ForeignKey(related, null=null)
        name = field.source_field or f"{name}_id"
    else:
        input_ = inputs.Text(null=null, help_text=hint)
    return Field(name=name, label=label, display=display, input_=input_)


def form_display(model: type[Model], name: str) -> Field:
    """A field the form shows (read-only) but the list leaves out, to fit the window."""
    field = field_for(model, name)
    return Field(field.name, field.label, displays.InputOnly(), inputs.DisplayOnly())


def form_only(model: type[Model], name: str) -> Field:
    """A field edited in the form but not shown as a list column (long text, JSON, ...)."""
    field = field_for(model, name)
    return Field(field.name, field.label, displays.InputOnly(), field.input)


def display_only(model: type[Model], name: str) -> Field:
    """A list column the form shows but never writes: the database keeps it (issue 6 triggers)."""
    field = field_for(model, name)
    return Field(field.name, field.label, field.display, inputs.DisplayOnly())


class StudioModel(ModelResource):  # type: ignore[misc]
    """What every studio resource shares: readable labels, sorting, row links, form hooks."""

    page_size = 20

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for found in getattr(cls, "filters", []):
            if isinstance(found, widgets.StudioFilter) and found.context["name"] in cls.fixed_order:
                found.leading = cls.leading

    # Extra fields passed to field_for by name, e.g. badge colours.
    display_options: dict[str, dict[str, Any]] = {}

    @classmethod
    def list_row(cls, row: dict[str, Any]) -> dict[str, Any]:
        """A list row as its cells show it (a hook: the row as read, by default)."""
        return row

    @classmethod
    def _get_display_input_field(cls, field_name: str) -> Field:
        return field_for(cls.model, field_name, **cls.display_options.get(field_name, {}))

    # The orders a list offers (its column headers): each is read as keyset pages by
    # (column, id), so only columns an index serves on the big tables (issue 10).
    sort_keys: tuple[str, ...] = ("id",)
    default_sort = "id"
    # Columns people ask to sort by that are not offered, and why (shown with the 400).
    unsortable: dict[str, str] = {}
    # Equality filters with an index on (column, each sort column, id), the most selective
    # first: the first of them a request filters leads the order (pages.Sort.fixed).
    fixed_order: tuple[str, ...] = ()

    @classmethod
    def leading(cls, filtered: Iterable[str]) -> tuple[str, ...]:
        """The column that leads the order of a list filtered by `filtered`, as a 1-tuple, or
        () (the list view's Sort.fixed, and each filter's leads_order)."""
        names = set(filtered)
        return next(((c,) for c in cls.fixed_order if c in names), ())

    @classmethod
    def sortable(cls, name: str) -> bool:
        return name in cls.sort_keys

    @classmethod
    def sort_of(cls, value: str | None) -> str:
        """The list's order from the `sort` parameter: a sortable column, `-` for descending;
        none (or empty) is the default order. Anything else is a 400 naming the allowed ones:
        serving the default order instead hid a typo, or a sort nobody can get fast at 10M
        (`sort=-duration_seconds` used to show the newest sessions first without a word)."""
        if not value:
            return cls.default_sort
        if cls.sortable(value.removeprefix("-")) and value.count("-") <= 1:
            return value
        allowed = ", ".join(cls.sort_keys)
        shown = value[:60] if value.isprintable() else "this value"
        raise HTTPException(
            HTTP_400_BAD_REQUEST,
            f"{cls.label} cannot be sorted by \u201c{shown}\u201d. They can be sorted by "
            f"{allowed} (a leading - for descending).{cls.unsortable.get(value.lstrip('-'), '')}",
        )

    @classmethod
    def writable(cls, request: Request) -> bool:
        """Whether the signed-in user's role may change this resource's rows (roles.py)."""
        return roles.may_write(request, cls.model.__name__.lower())

    async def get_toolbar_actions(self, request: Request) -> list[ToolbarAction]:
        if not self.writable(request):
            return []
        return [
            ToolbarAction(
                label="Create",
                icon="ti ti-plus",
                name="create",
                method=Method.GET,
                ajax=False,
                class_="btn-primary",
            )
        ]

    async def get_actions(self, request: Request) -> list[Action]:
        if not self.writable(request):  # the form, shown read-only
            return [
                Action(label="View", icon="ti ti-eye", name="update", method=Method.GET, ajax=False)
            ]
        return [
            Action(label="Edit", icon="ti ti-edit", name="update", method=Method.GET, ajax=False),
            Action(label="Delete", icon="ti ti-trash", name="delete", method=Method.DELETE),
        ]

    async def get_bulk_actions(self, request: Request) -> list[Action]:
        if not self.writable(request):
            return []
        return [
            Action(label="Delete selected", icon="ti ti-trash", name="delete", method=Method.DELETE)
        ]

    @classmethod
    def count_limit(cls, request: Request, values: dict[str, Any]) -> int:
        """How many rows the list counts before it says "more than N"."""
        limit: int = request.app.state.settings.studio_exact_count_limit
        return limit

    @classmethod
    async def related_links(cls, request: Request, obj: Any) -> list[tuple[str, str, str]]:
        """(icon, text, url) links shown on the edit page: the way to related rows and back."""
        return []

    @classmethod
    async def clean(cls, request: Request, values: dict[str, Any]) -> dict[str, Any]:
        """Last checks and renames of parsed form values; raise widgets.FormError to refuse."""
        return values


def _url(request: Request, path: str) -> str:
    return widgets.admin_url(request, path)


class RoleChoice(widgets.Choice):
    """The role select; a form without it (a script, an older page) keeps the stored role."""

    async def parse_value(self, request: Request, value: Any) -> Any:
        return widgets.KEEP if value is None else await super().parse_value(request, value)


class UserResource(StudioModel):
    label = "Users"
    model = User
    icon = "ti ti-users"
    page_pre_title = "People who practise"
    page_title = "Users"
    sort_keys = ("id", "email")
    filters = [
        widgets.Search(("email", "username")),
        widgets.YesNo("is_staff", "Staff"),
        widgets.OneOf(StaffRole, "role", "Role"),
        widgets.Since("created_at", "Joined from"),
        widgets.Until("created_at", "to"),
    ]
    fields = [
        "id",
        Field(
            "email",
            label="Email",
            display=widgets.Text(),
            input_=inputs.Email(help_text="Stored in lower case"),
        ),
        "username",
        "is_staff",
        Field(
            "role",
            label="Role",
            display=widgets.Badge(STAFF_ROLE_COLORS),
            input_=RoleChoice(StaffRole, default=StaffRole.VIEWER),
        ),
        widgets.RelatedRows("Sessions", ConversationSession, "user_id"),
        "created_at",
        form_display(User, "updated_at"),
        Field(
            "password",
            label="New password",
            display=displays.InputOnly(),
            input_=widgets.NewPassword(),
        ),
    ]

    @classmethod
    def list_row(cls, row: dict[str, Any]) -> dict[str, Any]:
        # A role means something only for staff: a learner's column stays empty.
        return row if row.get("is_staff", True) else {**row, "role": None}

    @classmethod
    async def related_links(cls, request: Request, obj: Any) -> list[tuple[str, str, str]]:
        counts = await widgets.related_counts(ConversationSession, "user_id", {obj.pk})
        return [
            (
                "ti ti-message-circle",
                f"Sessions ({widgets.count_label(counts[obj.pk])})",
                _url(request, f"conversationsession/list?user_id={obj.pk}"),
            )
        ]

    @classmethod
    async def clean(cls, request: Request, values: dict[str, Any]) -> dict[str, Any]:
        if "email" in values:
            try:
                validate_email(str(values["email"]), check_deliverability=False)
            except EmailNotValidError as exc:
                raise widgets.FormError(f"Email: {exc}") from None
        if "password" in values:
            values["password_hash"] = values.pop("password")
        return values


class ScenarioResource(StudioModel):
    label = "Scenarios"
    model = Scenario
    icon = "ti ti-theater"
    page_pre_title = "Conversations to practise"
    page_title = "Scenarios"
    # A handful of rows: any column can order them.
    sort_keys = ("id", "name", "slug", "partner_model", "coach_model", "created_at")
    default_sort = "name"
    filters = [
        widgets.Search(("name", "slug")),
        widgets.YesNo("is_active", "Active"),
        widgets.Since("created_at", "Created from"),
        widgets.Until("created_at", "to"),
    ]
    # The list shows what tells scenarios apart; the slug and dates are in the form (and the
    # search finds slugs): every column fits a 1280 px window.
    fields = [
        "id",
        "name",
        form_only(Scenario, "slug"),
        "is_active",
        widgets.RelatedRows("Sessions", ConversationSession, "scenario_id"),
        "partner_model",
        "coach_model",
        form_only(Scenario, "description"),
        form_only(Scenario, "partner_persona"),
        form_only(Scenario, "partner_system_prompt"),
        form_only(Scenario, "coach_system_prompt"),
        form_display(Scenario, "created_at"),
    ]

    @classmethod
    async def related_links(cls, request: Request, obj: Any) -> list[tuple[str, str, str]]:
        counts = await widgets.related_counts(ConversationSession, "scenario_id", {obj.pk})
        latest = await ScenarioVersion.filter(scenario_id=obj.pk).order_by("-version").first()
        current = latest.version if latest else 0
        return [
            (
                "ti ti-message-circle",
                f"Sessions ({widgets.count_label(counts[obj.pk])})",
                _url(request, f"conversationsession/list?scenario_id={obj.pk}"),
            ),
            (
                "ti ti-versions",
                f"Prompt versions (current: {current})",
                _url(request, f"scenario/{obj.pk}/versions"),
            ),
        ]


class SessionResource(StudioModel):
    label = "Sessions"
    model = ConversationSession
    icon = "ti ti-message-circle"
    page_pre_title = "Practice conversations"
    page_title = "Sessions"
    # Not by id: with a date filter, reading ids in order walked the sessions outside the
    # dates (80 ms, 198,795 discarded at 10M); ids follow the start times anyway.
    sort_keys = ("started_at",)
    default_sort = "-started_at"
    # Migration 4's (user_id, started_at), migration 9's (scenario_id, started_at, id) and
    # (status, started_at, id): a user has fewer sessions than a scenario or a status.
    fixed_order = ("user_id", "scenario_id", "status")
    unsortable = {
        "id": " Not by id: sort by started_at (ids follow it).",
        "total_messages": (
            " Not by total messages: every new message changes it, and an index on it would"
            " make each message write update every index of the session row."
        ),
        "duration_seconds": (
            " Not by duration: sessions still running have none, so its pages cannot be read"
            " in order from an index."
        ),
    }
    display_options = {"status": {"colors": STATUS_COLORS}}
    filters = [
        widgets.OneOf(SessionStatus, "status", "Status"),
        widgets.RelatedRow(Scenario, "scenario_id", "Scenario"),
        widgets.Id(User, "user_id", "User #"),
        widgets.Since("started_at", "Started from"),
        widgets.Until("started_at", "to"),
    ]
    fields = [
        "id",
        "user",
        "scenario",
        "status",
        "started_at",
        form_only(ConversationSession, "ended_at"),
        # Kept by database triggers from the message rows and the two times (migration 2).
        # The Messages column shows total_messages already.
        form_display(ConversationSession, "total_messages"),
        form_display(ConversationSession, "duration_seconds"),
        widgets.RelatedRows("Messages", Message, "session_id", count_field="total_messages"),
        widgets.RowLink("Transcript", "conversationsession/transcript/{id}", "Read"),
    ]

    @classmethod
    async def related_links(cls, request: Request, obj: Any) -> list[tuple[str, str, str]]:
        user = await User.filter(pk=obj.user_id).only(*widgets.label_columns(User)).get()
        scenario = (
            await Scenario.filter(pk=obj.scenario_id).only(*widgets.label_columns(Scenario)).get()
        )
        version = await ScenarioVersion.get(pk=obj.scenario_version_id)
        return [
            ("ti ti-user", f"User: {user}", _url(request, f"user/update/{user.pk}")),
            (
                "ti ti-theater",
                f"Scenario: {scenario}",
                _url(request, f"scenario/update/{scenario.pk}"),
            ),
            (
                "ti ti-versions",
                f"Prompt version {version.version} (what it ran with)"
                if version.created_at <= obj.started_at
                else f"Prompt version {version.version} (recorded after the session started, "
                "when recording began: it may have run with an earlier prompt)",
                _url(request, f"scenario/{version.scenario_id}/versions/{version.version}"),
            ),
            (
                "ti ti-list",
                f"Messages ({obj.total_messages:,})",  # kept exact by the triggers
                _url(request, f"message/list?session_id={obj.pk}"),
            ),
            (
                "ti ti-messages",
                "Transcript",
                _url(request, f"conversationsession/transcript/{obj.pk}"),
            ),
        ]


class MessageResource(StudioModel):
    label = "Messages"
    model = Message
    icon = "ti ti-message"
    page_pre_title = "Turns of the conversations"
    page_title = "Messages"
    sort_keys = ("timestamp",)
    default_sort = "timestamp"
    fixed_order = ("session_id",)  # the index (session_id, timestamp, id)
    unsortable = {
        "id": (
            " Not by id: with a date filter, reading ids in order walked millions of messages"
            " outside the dates (3.8 s at 10M messages)."
        )
    }
    display_options = {"role": {"colors": ROLE_COLORS}}
    filters = [
        search.MessageSearch(),
        widgets.OneOf(MessageRole, "role", "Role"),
        widgets.Id(ConversationSession, "session_id", "Session #"),
        widgets.Since("timestamp", "From"),
        widgets.Until("timestamp", "to"),
    ]
    fields = [
        "id",
        "session",
        "role",
        "content",
        "timestamp",
        form_only(Message, "audio_url"),
        form_only(Message, "metadata"),
    ]

    @classmethod
    def count_limit(cls, request: Request, values: dict[str, Any]) -> int:
        return search.count_limit(super().count_limit(request, values), values)

    @classmethod
    async def related_links(cls, request: Request, obj: Any) -> list[tuple[str, str, str]]:
        return [
            (
                "ti ti-message-circle",
                f"Session #{obj.session_id}",
                _url(request, f"conversationsession/update/{obj.session_id}"),
            ),
            (
                "ti ti-messages",
                "In the transcript",
                _url(request, f"conversationsession/transcript/{obj.session_id}#message-{obj.pk}"),
            ),
        ]


RESOURCES: list[type[StudioModel]] = [
    UserResource,
    ScenarioResource,
    SessionResource,
    MessageResource,
]
