"""coach_db.compiled: a query served from the cache of its shape sends the SQL and parameters
Tortoise builds for that query, and returns what Tortoise's own QuerySet returns; a shape it
cannot prove is built by Tortoise every time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.exceptions import FieldError, ValidationError
from tortoise.expressions import Q
from tortoise.fields.relational import ReverseRelation
from tortoise.functions import Count, Max
from tortoise.models import Model
from tortoise.queryset import QuerySet

from coach_db import (
    ConversationSession,
    Message,
    Scenario,
    SessionStatus,
    User,
    compiled,
)
from coach_db.queryset import (
    FastCountQuery,
    FastExistsQuery,
    FastQuerySet,
    FastValuesListQuery,
    FastValuesQuery,
)
from tests.factories import make_message, make_scenario, make_session, make_user

Query = Callable[[Any], Any]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entries(result: Any) -> Any:
    """Instances, dicts and tuples as their values with types (a StrEnum member equals its
    str value)."""
    if isinstance(result, list):
        return [entries(item) for item in result]
    if isinstance(result, Model):
        return [(key, type(value), entries(value)) for key, value in vars(result).items()]
    if isinstance(result, dict):
        return [(key, type(value), entries(value)) for key, value in result.items()]
    if isinstance(result, tuple):
        return (tuple, [(type(value), entries(value)) for value in result])
    if isinstance(result, ReverseRelation):
        return ("fetched", result._fetched, entries(list(result.related_objects)))
    return result


async def fill() -> dict[str, Any]:
    users = [await make_user(email=f"Person{n}@Example.com") for n in range(3)]
    scenarios = [await make_scenario(name=name) for name in ("Alpha", "*", "Beta")]
    sessions = []
    for n in range(9):
        session = await make_session(
            user=users[n % 3],
            scenario=scenarios[n % 3],
            status=list(SessionStatus)[n % 3],
        )
        for _ in range(n % 4 if session.status is SessionStatus.ACTIVE else 0):
            await make_message(session=session)
        sessions.append(session)
    await ConversationSession.filter(id=sessions[1].id).update(
        started_at=T0, ended_at=T0 + timedelta(hours=1)
    )
    return {"users": [u.id for u in users], "sessions": [s.id for s in sessions]}


# name -> (query of a value, the values it is run with, in order). Each runs twice over its
# values, so each shape is learned, confirmed and then served, with values that differ.
CASES: dict[str, tuple[Query, list[Any]]] = {
    "foreign key and limit": (
        lambda v: ConversationSession.filter(user_id=v).limit(31),
        ["u0", "u1", "u2", 10**9],
    ),
    "e-mail, normalised by its field": (
        lambda v: User.filter(email=v),
        ["person0@example.com", "PERSON1@Example.COM", " Person2@example.com "],
    ),
    "enum member and its string": (
        lambda v: ConversationSession.filter(status=v).order_by("id"),
        [SessionStatus.ACTIVE, "completed", SessionStatus.ABANDONED, "active"],
    ),
    "None and a time": (
        lambda v: ConversationSession.filter(ended_at=v).order_by("id"),
        [None, T0 + timedelta(hours=1), None, T0],
    ),
    "isnull flags": (
        lambda v: ConversationSession.filter(ended_at__isnull=v).order_by("id"),
        [True, False, True, False],
    ),
    "in lists of every length": (
        lambda v: ConversationSession.filter(user_id__in=v).order_by("id"),
        [[], ["u0"], ["u0", "u1"], ["u1", "u2"], [], ["u2"]],
    ),
    "not in": (
        lambda v: ConversationSession.filter(user_id__not_in=v).order_by("id"),
        [["u0"], ["u1"], [], ["u2"]],
    ),
    "range": (
        lambda v: ConversationSession.filter(started_at__range=v).order_by("id"),
        [(T0, T0), (T0 - timedelta(days=1), T0), (T0 + timedelta(days=1), T0 + timedelta(days=2))],
    ),
    "a literal star and empty text": (
        lambda v: Scenario.filter(name=v),
        ["Alpha", "*", "", "Beta", "*"],
    ),
    "booleans": (lambda v: Scenario.filter(is_active=v), [True, False, True]),
    "or, not and exclude": (
        lambda v: (
            ConversationSession.filter(Q(user_id=v) | Q(total_messages__gt=2))
            .exclude(status=SessionStatus.ABANDONED)
            .filter(~Q(total_messages=1))
            .order_by("-total_messages", "id")
        ),
        ["u0", "u1", "u2"],
    ),
    "values with a limit, zero included": (
        lambda v: Message.filter(content__not="").order_by("id").limit(v).values("id", "role"),
        [5, 0, 2, 0, 7],
    ),
    "values_list with limit and offset": (
        lambda v: (
            ConversationSession.all()
            .order_by("id")
            .limit(v)
            .offset(v + 1)
            .values_list("id", "status")
        ),
        [1, 2, 3],
    ),
    "flat values_list of a joined field": (
        lambda v: (
            ConversationSession.filter(user_id=v)
            .order_by("id")
            .values_list("scenario__name", flat=True)
        ),
        ["u0", "u1", "u2"],
    ),
    "select_related": (
        lambda v: (
            ConversationSession.filter(user_id=v).select_related("scenario", "user").order_by("id")
        ),
        ["u0", "u1", "u2"],
    ),
    "prefetch_related": (
        lambda v: ConversationSession.filter(user_id=v).prefetch_related("messages").order_by("id"),
        ["u0", "u1", "u2"],
    ),
    "annotate": (
        lambda v: (
            ConversationSession.filter(user_id=v).annotate(n=Count("messages")).order_by("id")
        ),
        ["u0", "u1", "u2"],
    ),
    "annotate a field's aggregate": (
        lambda v: (
            ConversationSession.filter(user_id=v)
            .annotate(last=Max("messages__timestamp"), n=Count("messages", distinct=True))
            .order_by("id")
        ),
        ["u0", "u1", "u2"],
    ),
    "values of an annotation": (
        lambda v: (
            ConversationSession.filter(user_id=v)
            .annotate(
                n=Count("messages"), last=Max("messages__timestamp"), role=Max("messages__role")
            )
            .order_by("id")
            .values("id", "n", "last", "role")
        ),
        ["u0", "u1", "u2"],
    ),
    "filter on an annotation": (
        lambda v: ConversationSession.annotate(n=Count("messages")).filter(n__gte=v).order_by("id"),
        [1, 2, 3],
    ),
    "the same value twice": (
        lambda v: ConversationSession.filter(total_messages__gte=v).order_by("id").limit(v),
        [2, 3, 1, 2],
    ),
    "two values, equal at first": (
        lambda v: ConversationSession.filter(total_messages__gte=v[0]).order_by("id").limit(v[1]),
        [(2, 2), (0, 3), (3, 1), (0, 5), (1, 1)],
    ),
    "count with limit and offset": (
        lambda v: ConversationSession.filter(user_id=v[0]).offset(v[1]).limit(v[2]).count(),
        [("u0", 0, 10), ("u1", 1, 1), ("u2", 5, 0), ("u0", 2, 100)],
    ),
    "count of a distinct join": (
        lambda v: ConversationSession.filter(user_id=v, messages__role="user").distinct().count(),
        ["u0", "u1", "u2"],
    ),
    "exists": (
        lambda v: ConversationSession.filter(user_id=v, status=SessionStatus.ACTIVE).exists(),
        ["u0", "u1", "u2", 10**9, 1],
    ),
    "LIKE operators": (
        lambda v: Message.filter(content__icontains=v).order_by("id"),
        ["hello", "%", "_", "HELLO"],
    ),
}


def resolve(value: Any, ids: dict[str, Any]) -> Any:
    """ "u0" names the id of the first user made by fill(), so queries can hold real keys."""
    if isinstance(value, str) and value[:1] == "u" and value[1:].isdigit():
        return ids["users"][int(value[1:])]
    if isinstance(value, list | tuple):
        return type(value)(resolve(item, ids) for item in value)
    return value


def tortoise_sql(query: Any) -> tuple[str, list[Any]]:
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    return sql, params


async def outcome(query: Any) -> Any:
    try:
        return entries(await query)
    except Exception as exc:  # the same error, whichever path raised it
        return (type(exc), str(exc))


@pytest.mark.parametrize("name", CASES)
async def test_each_shape_returns_what_tortoise_returns_with_each_value(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "VERIFY", False)  # the cached path itself, not a rebuild
    ids = await fill()
    make, values = CASES[name]
    for value in [resolve(v, ids) for v in values * 2]:
        query = make(value)
        model_rows = isinstance(query, FastQuerySet)
        expected_sql = tortoise_sql(make(value))
        assert compiled.sql(make(value), model_rows=model_rows) == expected_sql, value
        ours = await outcome(make(value))
        monkeypatch.setattr(compiled, "ENABLED", False)
        theirs = await outcome(make(value))
        monkeypatch.setattr(compiled, "ENABLED", True)
        assert ours == theirs, value


def cached(query: Any, *, model_rows: bool = True) -> compiled.Entry | None:
    query._choose_db_if_not_chosen()  # as awaiting it does
    key, _ = compiled.shape(query, model_rows=model_rows)
    found = compiled._SHAPES.get(key)
    return found if found is not None and found.confirmed else None


async def test_a_known_shape_is_not_built_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is used (else the test above compares Tortoise with itself)."""
    monkeypatch.setattr(compiled, "VERIFY", False)
    compiled.clear()  # shapes other tests taught it
    ids = await fill()
    builds: list[type] = []
    queries = (FastQuerySet, FastValuesQuery, FastValuesListQuery, FastCountQuery, FastExistsQuery)
    for cls in queries:
        original = cls._make_query

        def counting(self: Any, original: Any = original) -> None:
            builds.append(type(self))
            original(self)

        monkeypatch.setattr(cls, "_make_query", counting)
    users = ids["users"]
    for round in range(2):
        for user in users:
            await ConversationSession.filter(user_id=user).select_related("scenario")
            await ConversationSession.filter(user_id=user).values("id")
            await ConversationSession.filter(user_id=user).values_list("id")
            await ConversationSession.filter(user_id=user).limit(5).count()
            await ConversationSession.filter(user_id=user).exists()
        if round == 0:  # learned, confirmed, then served (exists() sends a 1: user 1 is not
            # told apart from it, so it may take the third user to learn)
            assert builds.count(FastQuerySet) == 2
            assert builds.count(FastValuesQuery) == builds.count(FastValuesListQuery) == 2
            assert builds.count(FastCountQuery) == 2
            assert 2 <= builds.count(FastExistsQuery) <= 3
            builds.clear()
    assert builds == []
    assert cached(ConversationSession.filter(user_id=1).select_related("scenario"))


async def test_shapes_it_cannot_prove_are_never_cached() -> None:
    ids = await fill()
    user = ids["users"][0]
    unproven = {
        "LIKE": Message.filter(content__icontains="hello"),
        "a filter through a relation": ConversationSession.filter(user__email="x@example.com"),
        "a model instance": ConversationSession.filter(user=await User.get(id=user)),
        "an annotation's filter": ConversationSession.annotate(n=Count("messages")).filter(n=1),
    }
    for _ in range(4):
        for query in unproven.values():
            await query._clone()
    for name, query in unproven.items():
        with contextlib.suppress(compiled.Uncacheable):
            assert cached(query) is None, name


def test_a_shape_is_learned_only_when_each_value_is_sent_once_as_it_is() -> None:
    assert compiled._candidates([7, "a", None], ["a", None, 7]) == ((1,), (2,), (0,))
    assert compiled._candidates([7, 7], [7, 7]) == ((0, 1), (0, 1))  # which is which: open
    assert compiled._candidates([7, 8], [7]) is None  # 8 chose the SQL instead of being sent
    assert compiled._candidates([7, 8], [7, 7]) is None  # the same
    assert compiled._candidates([7], [7, 8]) is None  # 8 came from elsewhere
    assert compiled._candidates([1], [True]) is None  # equal, but not the same value
    assert compiled._candidates(["a"], ["A"]) is None
    assert compiled._narrowed(((0, 1), (0, 1)), ((0,), (1,))) == ((0,), (1,))
    assert compiled._narrowed(((0,),), ((1,),)) is None  # the same shape, built two ways


async def test_values_equal_when_learned_are_told_apart_by_a_later_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Learned from total_messages >= 3 with limit(3), the shape cannot say which 3 is which:
    it serves queries whose two values are equal, builds the first that differ (which tells
    them apart) and serves every query after that."""
    monkeypatch.setattr(compiled, "VERIFY", False)
    compiled.clear()
    await fill()
    builds: list[Any] = []
    original = FastQuerySet._make_query

    def counting(self: Any) -> None:
        builds.append(self)
        original(self)

    monkeypatch.setattr(FastQuerySet, "_make_query", counting)

    def query(at_least: int, limit: int) -> Any:
        return ConversationSession.filter(total_messages__gte=at_least).order_by("id").limit(limit)

    for pair in ((3, 3), (3, 3), (2, 2), (1, 5), (4, 2), (6, 1)):  # no 0: another shape
        ours = entries(await query(*pair))
        theirs = entries(
            await QuerySet(ConversationSession)
            .filter(total_messages__gte=pair[0])
            .order_by("id")
            .limit(pair[1])
        )
        assert ours == theirs, pair
    assert len(builds) == 3  # learned, confirmed (both equal), told apart by (1, 5)


async def test_a_value_its_field_refuses_raises_tortoises_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compiled, "VERIFY", False)
    await fill()
    for name, status in (("Alpha", "active"), ("Beta", "completed"), ("Alpha", "active")):
        await Scenario.filter(name=name)  # the shapes learned and confirmed first
        await ConversationSession.filter(status=status)
    for query in (
        lambda: Scenario.filter(name="x" * 10_000),
        lambda: ConversationSession.filter(status="no such status"),
        lambda: ConversationSession.filter(status="nostatus"),
    ):
        ours = await outcome(query())
        monkeypatch.setattr(compiled, "ENABLED", False)
        theirs = await outcome(query())
        monkeypatch.setattr(compiled, "ENABLED", True)
        assert ours == theirs
        assert ours[0] in (ValidationError, ValueError), ours


async def test_the_cache_holds_at_most_max_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "MAX_SHAPES", 3)
    compiled.clear()
    for field in ("id", "total_messages", "started_at", "ended_at", "status", "user_id"):
        await ConversationSession.all().order_by(field).limit(5)
    assert len(compiled._SHAPES) == 3


async def test_with_the_cache_off_every_query_is_built_by_tortoise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compiled, "ENABLED", False)
    compiled.clear()
    for _ in range(3):
        await ConversationSession.filter(user_id=1)
    assert compiled._SHAPES == {}
    assert not isinstance(QuerySet(ConversationSession), FastQuerySet)


async def test_values_of_one_name_annotated_two_ways_read_each_its_own_way() -> None:
    """FastValuesQuery keeps its row readers per fields and columns: an annotation's converter
    is not one of those, so two annotations of the same name must not share a reader."""
    ids = await fill()
    user = ids["users"][0]
    for annotation in (Max("messages__role"), Count("messages"), Max("messages__role")):
        query = ConversationSession.filter(user_id=user).annotate(x=annotation).order_by("id")
        ours = await outcome(query.values("id", "x"))
        plain = QuerySet(ConversationSession).filter(user_id=user).annotate(x=annotation)
        theirs = await outcome(plain.order_by("id").values("id", "x"))
        assert ours == theirs


async def test_shapes_from_endless_inputs_keep_the_cache_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A service passing user input (filter names, list lengths) cannot grow it without end."""
    monkeypatch.setattr(compiled, "MAX_SHAPES", 5)
    compiled.clear()
    encoders = len(compiled._ENCODERS)
    for n in range(1, 30):
        for _ in range(2):  # a shape per length of the list
            await ConversationSession.filter(user_id__in=list(range(n)))
        with pytest.raises(FieldError):
            await ConversationSession.filter(**{f"no_such_field_{n}": 1})
        compiled._failed(("a shape that could not be proven", n))
    assert len(compiled._FAILURES) <= 5 and len(compiled._SHAPES) <= 5
    assert len(compiled._ENCODERS) <= encoders + 1  # user_id__in only
