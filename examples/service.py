"""A typed consumer: the README's queries written as a service would, checked by mypy --strict."""

from __future__ import annotations

import asyncio

import coach_db
from coach_db import ConversationSession, Message, MessageRole, Scenario, SessionStatus, User
from coach_db.types import ScenarioRead, SessionRead, UserWithSessions


async def active_scenarios() -> list[Scenario]:
    return await Scenario.filter(is_active=True).order_by("name")


async def start_practice(email: str, slug: str) -> ConversationSession:
    user = await User.get(email=email)
    scenario = await Scenario.get(slug=slug, is_active=True)
    return await ConversationSession.create(user=user, scenario=scenario)


async def say(session: ConversationSession, text: str) -> Message:
    return await Message.create(session=session, role=MessageRole.USER, content=text)


async def recent_sessions(user: User, limit: int = 10) -> list[SessionRead]:
    query = ConversationSession.filter(user=user).order_by("-started_at").limit(limit)
    return await SessionRead.from_queryset(query)


async def history(user: User) -> UserWithSessions:
    return await UserWithSessions.from_tortoise_orm(user)


async def main() -> None:
    async with coach_db.connect():  # DATABASE_URL, read now
        for scenario in await active_scenarios():
            read = ScenarioRead.model_validate(scenario, from_attributes=True)
            print(read.model_dump_json(include={"slug", "name"}))
        open_sessions = await ConversationSession.filter(status=SessionStatus.ACTIVE).count()
        print(f"{open_sessions} sessions in progress")


if __name__ == "__main__":
    asyncio.run(main())
