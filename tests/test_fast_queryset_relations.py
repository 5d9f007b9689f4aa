"""select_related, prefetch_related, annotate, .values() and .values_list() through the models'
FastQuerySet give what Tortoise's own QuerySet gives, entry by entry and related instance by
related instance, over every model; they take the fast path; and under another Tortoise
version every query runs Tortoise's own code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.fields.relational import ReverseRelation
from tortoise.functions import Count, Max
from tortoise.models import Model
from tortoise.queryset import QuerySet, ValuesListQuery, ValuesQuery

from coach_db import ConversationSession, Message, Scenario, ScenarioVersion, User
from coach_db import queryset as fast
from coach_db.config import APP_LABEL, MODELS_MODULE
from coach_db.models import AuditEvent, ErasureReceipt
from tests.test_fast_queryset_shapes import Shape, fill

MODELS: list[type[Model]] = [
    User,
    Scenario,
    ScenarioVersion,
    ConversationSession,
    Message,
    AuditEvent,
    ErasureReceipt,
]


def deep(value: Any) -> Any:
    """An instance's attributes in order with their types, related instances and fetched
    reverse relations included; dicts, lists and tuples element by element."""
    if isinstance(value, Model):
        return [(key, type(v), deep(v)) for key, v in vars(value).items()]
    if isinstance(value, ReverseRelation):
        return ("reverse", value._fetched, [deep(x) for x in value] if value._fetched else None)
    if isinstance(value, dict):
        return {key: (type(v), deep(v)) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value), [(type(v), deep(v)) for v in value])
    return value


def shapes(model: type[Model]) -> dict[str, Shape]:
    """Every shape the fast path now takes, generated from the model's relations."""
    meta = model._meta
    pk = meta.pk_attr
    first = next(name for name in meta.fields_map if name in meta.db_fields and name != pk)
    out: dict[str, Shape] = {
        "values": lambda q: q.order_by(pk).values(),
        "values some, renamed": lambda q: q.order_by(pk).values(first, key=pk),
        "values_list": lambda q: q.order_by(pk).values_list(),
        "values_list some": lambda q: q.order_by(pk).values_list(first, pk),
        "values_list flat": lambda q: q.order_by(pk).values_list(first, flat=True),
        "values empty": lambda q: q.filter(**{pk: -1}).values(),
    }
    for fk in sorted(meta.fk_fields):
        out[f"select_related {fk}"] = lambda q, fk=fk: q.order_by(pk).select_related(fk)
        out[f"prefetch_related {fk}"] = lambda q, fk=fk: q.order_by(pk).prefetch_related(fk)
        out[f"values across {fk}"] = lambda q, fk=fk: q.order_by(pk).values(pk, f"{fk}__id")
        related = meta.fields_map[fk].related_model
        for nested in sorted(related._meta.fk_fields):
            out[f"select_related {fk}__{nested}"] = lambda q, path=f"{fk}__{nested}": q.order_by(
                pk
            ).select_related(path)
    for relation in sorted(meta.backward_fk_fields):
        out[f"annotate count {relation}"] = lambda q, r=relation: q.order_by(pk).annotate(
            n=Count(r)
        )
        out[f"prefetch_related {relation}"] = lambda q, r=relation: q.order_by(pk).prefetch_related(
            r
        )
        out[f"annotate values {relation}"] = lambda q, r=relation: (
            q.order_by(pk).annotate(n=Count(r)).values()
        )
        out[f"annotate values_list {relation}"] = lambda q, r=relation: (
            q.order_by(pk).annotate(n=Count(r)).values_list()
        )
    if meta.fk_fields and meta.backward_fk_fields:
        fk, relation = sorted(meta.fk_fields)[0], sorted(meta.backward_fk_fields)[0]
        # Not with an aggregate too: Tortoise's GROUP BY omits the joined columns.
        out["select and prefetch together"] = lambda q: (
            q.order_by(pk).select_related(fk).prefetch_related(relation)
        )
    if meta.backward_fk_fields:
        relation = sorted(meta.backward_fk_fields)[0]
        out["two aggregates and a prefetch"] = lambda q: (
            q.order_by(pk)
            .annotate(n=Count(relation), last=Max(f"{relation}__id"))
            .prefetch_related(relation)
        )
    return out


# The relations, to generate the shapes from, are wired once the models are initialised.
Tortoise.init_models([MODELS_MODULE], APP_LABEL)
CASES = [(model, name, shape) for model in MODELS for name, shape in shapes(model).items()]


async def outcome(query: Any) -> Any:
    try:
        return await query
    except Exception as exc:  # the same error both ways is the same behaviour
        return (type(exc), str(exc))


@pytest.mark.parametrize(
    ("model", "shape"),
    [(model, shape) for model, _, shape in CASES],
    ids=[f"{model.__name__}: {name}" for model, name, _ in CASES],
)
async def test_shapes_give_tortoises_results_entry_by_entry(
    model: type[Model], shape: Shape
) -> None:
    await fill()
    ours = await outcome(shape(model.all()))
    theirs = await outcome(shape(QuerySet(model)))
    assert deep(ours) == deep(theirs)
    assert isinstance(ours, list)


async def test_every_model_has_rows_for_the_shapes_to_compare() -> None:
    """Else the comparisons above would compare empty lists."""
    await fill()
    for model in MODELS:
        assert await QuerySet(model).count() >= 1, model.__name__


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the models whose _init_from_db runs (Tortoise's path), and 'values' when
    Tortoise's own ValuesQuery/ValuesListQuery _execute runs."""
    calls: list[str] = []
    for model in MODELS:
        original = model._init_from_db

        def tracked(__original: Any = original, __name: str = model.__name__, **kw: Any) -> Any:
            calls.append(__name)
            return __original(**kw)

        monkeypatch.setattr(model, "_init_from_db", tracked)
    for query in (ValuesQuery, ValuesListQuery):
        original_execute = query._execute

        async def execute(self: Any, __original: Any = original_execute) -> Any:
            calls.append("values")
            return await __original(self)

        monkeypatch.setattr(query, "_execute", execute)
    return calls


# Column aliases longer than PostgreSQL's 63 characters come back truncated
# ("conversation_session__scenario_version__scenario.partner_system"): Tortoise builds that
# scenario as a partial instance without its prompts, and so does the fast path, through
# _init_from_db.
TRUNCATED = {(ConversationSession, "select_related scenario_version__scenario")}


async def test_truncated_column_names_give_tortoises_partial_instances() -> None:
    await fill()
    (ours, *_) = await ConversationSession.all().select_related("scenario_version__scenario")
    (theirs, *_) = await QuerySet(ConversationSession).select_related("scenario_version__scenario")
    assert theirs.scenario_version.scenario._partial
    assert deep(ours) == deep(theirs)


async def test_the_shapes_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No instance built by _init_from_db, no values through Tortoise's own loop."""
    await fill()
    calls = counting(monkeypatch)
    for model, name, shape in CASES:
        if "empty" in name or (model, name) in TRUNCATED:
            continue
        result = await shape(model.all())
        assert result, (model.__name__, name)
        assert calls == [], (model.__name__, name)


async def test_another_tortoise_version_runs_tortoises_own_code(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The fast path checks the version it was written for; any other falls back, says so
    once, and gives the same results."""
    assert fast.supported(fast.WRITTEN_FOR)
    assert not fast.supported("1.1.10") and not fast.supported("1.2.0")
    await fill()
    expected = {
        (model, name): deep(await shape(QuerySet(model)))
        for model, name, shape in CASES
        if "empty" not in name and (model, name) not in TRUNCATED
    }
    monkeypatch.setattr(fast, "ENABLED", False)
    monkeypatch.setattr(fast, "_warned", False)
    calls = counting(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="coach_db.queryset"):
        for (model, name), theirs in expected.items():
            assert deep(await shapes(model)[name](model.all())) == theirs, name
        assert deep(await Message.all().order_by("id")) == deep(
            await QuerySet(Message).order_by("id")
        )
    assert "Message" in calls and "values" in calls
    warnings = [r for r in caplog.records if "written for tortoise-orm" in r.getMessage()]
    assert len(warnings) == 1
    assert fast.WRITTEN_FOR in warnings[0].getMessage()


async def test_foreign_key_prefetch_attaches_without_model_setattr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tortoise attaches each prefetched foreign key with three Model.__setattr__ calls per
    instance; the fast path writes the same two attributes directly."""
    await fill()
    cases = [
        (m, n, s)
        for m, n, s in CASES
        if n.startswith("prefetch_related") and n[17:] in m._meta.fk_fields
    ]
    assert len(cases) == 5  # ScenarioVersion: scenario; sessions: 3; Message: session
    calls: list[str] = []
    for model in MODELS:

        def tracked(self: Any, key: str, value: Any, __model: type[Model] = model) -> None:
            calls.append(key)
            Model.__setattr__(self, key, value)

        monkeypatch.setattr(model, "__setattr__", tracked)
    for model, name, shape in cases:
        assert await shape(model.all()), name
        assert calls == [], name
    await QuerySet(Message).prefetch_related("session")
    assert calls  # the counting works: Tortoise's own path sets them this way
