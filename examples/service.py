"""A typed consumer: the README's queries written as a service would, checked by mypy --strict."""

from __future__ import annotations

import asyncio
from datetime import datetime

import coach_db
from coach_db import ConversationSession, Message, MessageRole, Scenario, SessionStatus, User
from coach_db.types import MessageRead, ScenarioRead, SessionRead, UserWithSessions


async def active_scenarios() -> list[Scenario]:
    return await Scenario.filter(is_active=True).order_by("name")


async def start_practice(email: str, slug: str) -> ConversationSession:
    user = await User.get(email=email)
    scenario = await Scenario.get(slug=slug)
    return await coach_db.start_session(user, scenario)  # ScenarioInactive if withdrawn


async def say(session: ConversationSession, text: str) -> Message:
    try:
        return await coach_db.add_message(session, MessageRole.USER, text)
    except coach_db.SessionNotActive:
        raise ValueError("This conversation has ended.") from None


async def finish(session: ConversationSession) -> int | None:
    ended = await coach_db.end_session(session, SessionStatus.COMPLETED)
    return ended.duration_seconds


async def read_all(session: ConversationSession) -> list[MessageRead]:
    messages: list[MessageRead] = []
    while page := await coach_db.transcript(session, after=messages[-1] if messages else None):
        messages += page
    return messages


async def recent_sessions(user: User, limit: int = 10) -> list[SessionRead]:
    query = ConversationSession.filter(user=user).order_by("-started_at").limit(limit)
    return await SessionRead.from_queryset(query)


async def history(user: User) -> UserWithSessions:
    return await coach_db.user_history(user)  # one query, however long the history


async def last_scenario_name(user: User) -> str | None:
    """Nested fields of the read types are typed all the way down."""
    sessions = (await history(user)).sessions
    if not sessions:
        return None
    latest = sessions[0]
    coach_notes = [m.content for m in latest.messages if m.role is MessageRole.COACH]
    print(f"{latest.scenario.name}: {latest.total_messages} messages, {len(coach_notes)} notes")
    return latest.scenario.name


async def search(text: str, since: datetime) -> list[Message]:
    """Filter keywords are checked too: a misspelt field or a wrong value type is an error."""
    return await Message.filter(
        content__icontains=text,
        timestamp__gte=since,
        session__status__in=[SessionStatus.ACTIVE, SessionStatus.COMPLETED],
        session__scenario__is_active=True,
    ).limit(20)


async def main() -> None:
    async with coach_db.connect():  # DATABASE_URL, read now
        for scenario in await active_scenarios():
            read = ScenarioRead.model_validate(scenario, from_attributes=True)
            print(read.model_dump_json(include={"slug", "name"}))
        open_sessions = await ConversationSession.filter(status=SessionStatus.ACTIVE).count()
        print(f"{open_sessions} sessions in progress")


if __name__ == "__main__":
    asyncio.run(main())
