"""The foreign-key inputs' autocomplete: at most 20 rows matching what was typed, as JSON.

`GET /admin/lookup/<resource>?q=…` (signed-in staff only) answers by row number prefix (`12`
finds #12, #120-#129, #1200-#1299, … in that order, each range read from the primary key),
by e-mail (users, and the sessions of those users, newest first) or by name / slug
(scenarios). Every branch is LIMITed, so the answer never grows with a table.
"""

from __future__ import annotations

from typing import Any

from tortoise import connections
from tortoise.expressions import Q
from tortoise.models import Model

from coach_db.apps.studio import params, widgets
from coach_db.models import ConversationSession, Scenario, User

LOOKUP_LIMIT = 20
MAX_QUERY_CHARS = 200


async def lookup(model: type[Model], text: str) -> list[dict[str, Any]]:
    """[{"id": …, "label": …}] of at most LOOKUP_LIMIT rows of `model` matching `text`.
    Raises params.BadValue for text PostgreSQL cannot take."""
    text = params.check_text(text).strip()
    if len(text) > MAX_QUERY_CHARS:
        raise params.BadValue(f"at most {MAX_QUERY_CHARS} characters")
    ids: list[int]
    if not text:
        recent = await model.all().order_by("-id").limit(LOOKUP_LIMIT).values("id")
        ids = [row["id"] for row in recent]
    elif text.removeprefix("#").isascii() and text.removeprefix("#").isdigit():
        ids = await _by_number(model, text.removeprefix("#"))
    elif model is User:
        ids = await _users(text)
    elif model is ConversationSession:
        ids = await _sessions_of_users(text)
    elif model is Scenario:
        scenarios = (
            await Scenario.filter(Q(name__icontains=text) | Q(slug__icontains=text))
            .order_by("name", "id")
            .limit(LOOKUP_LIMIT)
            .values("id")
        )
        ids = [row["id"] for row in scenarios]
    else:
        ids = []
    return await _labelled(model, ids)


async def _by_number(model: type[Model], digits: str) -> list[int]:
    """Ids starting with `digits`, smallest first: one range per length, read in order and
    stopped by the LIMIT as soon as 20 are found."""
    upper = params.id_range(model)
    ranges: list[tuple[int, int]] = []
    if len(digits) <= 19 and int(digits) > 0:
        low, width = int(digits), 1
        while low <= upper:
            ranges.append((low, min(low + width - 1, upper)))
            low, width = low * 10, width * 10
    if not ranges:
        return []
    table = model._meta.db_table
    branches = " UNION ALL ".join(
        f'(SELECT id FROM "{table}" WHERE id BETWEEN ${2 * i + 1} AND ${2 * i + 2}'
        f" ORDER BY id LIMIT {LOOKUP_LIMIT})"
        for i in range(len(ranges))
    )
    rows = await connections.get("default").execute_query_dict(
        f"SELECT id FROM ({branches}) AS found LIMIT {LOOKUP_LIMIT}",
        [bound for pair in ranges for bound in pair],
    )
    return [row["id"] for row in rows]


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _users(text: str) -> list[int]:
    rows = await connections.get("default").execute_query_dict(
        'SELECT id FROM "user" WHERE email LIKE $1 OR lower(username) LIKE $1'
        f" ORDER BY email LIMIT {LOOKUP_LIMIT}",
        [_like(text)],
    )
    return [row["id"] for row in rows]


async def _sessions_of_users(text: str) -> list[int]:
    """The newest sessions of the users whose e-mail contains `text`: at most 20 users, 20
    sessions each from the (user_id, started_at) index, then the newest 20 of those."""
    rows = await connections.get("default").execute_query_dict(
        'SELECT s.id FROM (SELECT id FROM "user" WHERE email LIKE $1 ORDER BY email'
        f" LIMIT {LOOKUP_LIMIT}) AS u CROSS JOIN LATERAL (SELECT id, started_at"
        " FROM conversation_session WHERE user_id = u.id ORDER BY started_at DESC"
        f" LIMIT {LOOKUP_LIMIT}) AS s ORDER BY s.started_at DESC, s.id DESC LIMIT {LOOKUP_LIMIT}",
        [_like(text)],
    )
    return [row["id"] for row in rows]


async def _labelled(model: type[Model], ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = await model.filter(id__in=ids).only(*widgets.label_columns(model))
    labels = {row.pk: str(row) for row in rows}
    if model is ConversationSession:  # a session's own label says little: add its user
        owners = await ConversationSession.filter(id__in=ids).values_list("id", "user__email")
        labels = {pk: f"{labels[pk]} · {email}" for pk, email in owners if pk in labels}
    return [{"id": pk, "label": labels[pk]} for pk in ids if pk in labels]


# The tables foreign keys point at (no column points at a message).
LOOKUPS: dict[str, type[Model]] = {
    widgets.resource_name(m): m for m in (User, Scenario, ConversationSession)
}
