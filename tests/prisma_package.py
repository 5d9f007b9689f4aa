"""A database as the Prisma package's migrations made it and its Node app filled it (by hand:
`prisma migrate` needs an engine binary this machine cannot download)."""

# ruff: noqa: E501

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from coach_db.apps.seed.data import SCENARIOS, TEST_USER_PASSWORD

# bcrypt hashes as the Node app wrote them (cost 10); made once with Python's bcrypt.
TEST_USER_HASH = "$2a$10$TQKNy.BzhXw/kvKtHPsX7emiZpL/oiFDYsKU1Plcz0hPG6Qf34/Za"  # password123
STAFF_HASH = "$2b$10$ylhVdFXXsyBeQVT2Y8C5ce04/gXsLHdvTvoQgGLLPZ5G6bov7VaBS"  # staff-pass-42
assert TEST_USER_PASSWORD == "password123"
STAFF_EMAIL = "Coach.Admin@Example.COM"  # a staff member whose e-mail has capitals


@dataclass(frozen=True)
class Variant:
    """Prisma's ways of writing the same schema.prisma."""

    enums: bool = False  # status/role as Prisma enums instead of String
    timestamps: bool = True  # createdAt/updatedAt on User and Scenario
    json_optional: bool = True  # metadata Json? (else Json with @default("{}"))
    counters: bool = True  # ConversationSession.totalMessages and durationSeconds

    @property
    def id(self) -> str:
        return "-".join(
            [
                "enum" if self.enums else "string",
                "stamps" if self.timestamps else "nostamps",
                "json?" if self.json_optional else "json",
                *([] if self.counters else ["nocounters"]),
            ]
        )


VARIANTS = (
    Variant(),
    Variant(enums=True, timestamps=False, json_optional=False),
    Variant(enums=True, timestamps=True, json_optional=True),
    Variant(counters=False),
)


def ddl(v: Variant) -> str:
    """The SQL of the package's migration, in `prisma migrate`'s conventions."""
    status = (
        "\"SessionStatus\" NOT NULL DEFAULT 'active'"
        if v.enums
        else ("TEXT NOT NULL DEFAULT 'active'")
    )
    role = '"MessageRole" NOT NULL' if v.enums else "TEXT NOT NULL"
    stamps = (
        '"createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n'
        '    "updatedAt" TIMESTAMP(3) NOT NULL,\n'
        if v.timestamps
        else ""
    )
    metadata = "JSONB" if v.json_optional else "JSONB NOT NULL DEFAULT '{}'"
    counters = (
        '"totalMessages" INTEGER NOT NULL DEFAULT 0,\n    "durationSeconds" INTEGER,\n'
        if v.counters
        else ""
    )
    enums = (
        """-- CreateEnum
CREATE TYPE "SessionStatus" AS ENUM ('active', 'completed', 'abandoned');

-- CreateEnum
CREATE TYPE "MessageRole" AS ENUM ('user', 'partner', 'coach');

"""
        if v.enums
        else ""
    )
    return f"""{enums}-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "username" TEXT NOT NULL,
    "passwordHash" TEXT,
    {stamps}CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Scenario" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "partnerPersona" TEXT NOT NULL,
    "partnerSystemPrompt" TEXT NOT NULL,
    "coachSystemPrompt" TEXT NOT NULL,
    "partnerModel" TEXT NOT NULL,
    "coachModel" TEXT NOT NULL,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    {stamps}CONSTRAINT "Scenario_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ConversationSession" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER NOT NULL,
    "scenarioId" INTEGER NOT NULL,
    "status" {status},
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" TIMESTAMP(3),
    {counters}
    CONSTRAINT "ConversationSession_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Message" (
    "id" SERIAL NOT NULL,
    "sessionId" INTEGER NOT NULL,
    "role" {role},
    "content" TEXT NOT NULL,
    "timestamp" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "audioUrl" TEXT,
    "metadata" {metadata},

    CONSTRAINT "Message_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- CreateIndex
CREATE UNIQUE INDEX "Scenario_slug_key" ON "Scenario"("slug");

-- CreateIndex
CREATE INDEX "ConversationSession_userId_startedAt_idx" ON "ConversationSession"("userId", "startedAt");

-- CreateIndex
CREATE INDEX "Message_sessionId_timestamp_idx" ON "Message"("sessionId", "timestamp");

-- AddForeignKey
ALTER TABLE "ConversationSession" ADD CONSTRAINT "ConversationSession_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ConversationSession" ADD CONSTRAINT "ConversationSession_scenarioId_fkey" FOREIGN KEY ("scenarioId") REFERENCES "Scenario"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Message" ADD CONSTRAINT "Message_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "ConversationSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"""


HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);
"""
MIGRATION_NAME = "20250114093012_init"


async def create_schema(conn: asyncpg.Connection, v: Variant) -> None:
    """What `prisma migrate deploy` leaves: the tables and one row of history."""
    sql = ddl(v)
    await conn.execute(HISTORY_DDL)
    await conn.execute(sql)
    await conn.execute(
        'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, '
        "started_at, applied_steps_count) VALUES ($1, encode(sha256(convert_to($2, 'UTF8')), "
        "'hex'), '2025-01-14 09:30:13.402+00', $3, '2025-01-14 09:30:13.211+00', 1)",
        str(uuid.uuid4()),
        sql,
        MIGRATION_NAME,
    )


async def fill(conn: asyncpg.Connection, v: Variant) -> None:
    """Rows as the Node app wrote them, with the slips coach-db's invariants catch.

    Times are UTC wall-clock values, as Prisma writes them into TIMESTAMP(3).
    """
    stamps = v.timestamps
    for s in SCENARIOS:
        cols = (
            '"name", "slug", "description", "partnerPersona", "partnerSystemPrompt", '
            '"coachSystemPrompt", "partnerModel", "coachModel", "isActive"'
        )
        values = [
            s["name"], s["slug"], s["description"], s["partner_persona"],
            s["partner_system_prompt"], s["coach_system_prompt"], s["partner_model"],
            s["coach_model"], s["is_active"],
        ]  # fmt: skip
        if stamps:
            cols += ', "createdAt", "updatedAt"'
            values += ["2025-01-14 09:31:00.123", "2025-03-02 17:45:10.5"]
        marks = ", ".join(f"${i + 1}" for i in range(len(values)))
        await conn.execute(
            f'INSERT INTO "Scenario" ({cols}) VALUES ({marks.replace("$10", "$10::text::timestamp").replace("$11", "$11::text::timestamp")})',
            *values,
        )
    users = [
        ("test@example.com", "Test User", TEST_USER_HASH),
        (STAFF_EMAIL, "Coach Admin", STAFF_HASH),
        ("saml.person@example.com", "SAML Person", None),
        ("Zoë.Ünïcode@Example.org", "Zoë 🌍", "$2y$10$" + "a" * 53),
    ]
    for email, name, hashed in users:
        if stamps:
            await conn.execute(
                'INSERT INTO "User" ("email", "username", "passwordHash", "createdAt", '
                '"updatedAt") VALUES ($1, $2, $3, $4::text::timestamp, $4::text::timestamp)',
                email, name, hashed, "2025-02-03 04:05:06.789",
            )  # fmt: skip
        else:
            await conn.execute(
                'INSERT INTO "User" ("email", "username", "passwordHash") VALUES ($1, $2, $3)',
                email,
                name,
                hashed,
            )
    # A user deleted by the Node app: its id is never handed out again.
    await conn.execute("""INSERT INTO "User" ("email", "username") VALUES ('gone@example.com', 'Gone')"""
                       if not stamps else
                       """INSERT INTO "User" ("email", "username", "updatedAt") VALUES ('gone@example.com', 'Gone', '2025-01-01')""")  # fmt: skip
    await conn.execute("""DELETE FROM "User" WHERE "email" = 'gone@example.com'""")
    sessions = [
        # (user, scenario, status, start, end, stored total, stored duration)
        (1, 1, "completed", "2025-03-30 06:59:59.999", "2025-03-30 07:10:00.001", 4, 600),
        (1, 2, "active", "2025-11-02 05:30:00.5", None, 0, None),  # stale: has 2 messages
        (2, 1, "completed", "2025-06-01 12:00:00", "2025-06-01 12:01:00", 3, 61),  # bad duration
        (3, 2, "abandoned", "2025-07-04 23:59:59.5", None, 1, None),  # ended without an end
        (4, 1, "completed", "2025-08-08 08:08:08.008", "2025-08-08 08:10:00", 2, 111),
    ]
    for user, scenario, status, start, end, total, duration in sessions:
        if v.counters:
            await conn.execute(
                'INSERT INTO "ConversationSession" ("userId", "scenarioId", "status", "startedAt", '
                '"endedAt", "totalMessages", "durationSeconds") '
                "VALUES ($1, $2, $3, $4::text::timestamp, $5::text::timestamp, $6, $7)",
                user, scenario, status, start, end, total, duration,
            )  # fmt: skip
        else:
            await conn.execute(
                'INSERT INTO "ConversationSession" ("userId", "scenarioId", "status", "startedAt", '
                '"endedAt") VALUES ($1, $2, $3, $4::text::timestamp, $5::text::timestamp)',
                user, scenario, status, start, end,
            )  # fmt: skip
    messages = [
        (1, "user", "Hi 👋 — I'd like to\r\ntalk.  ", "2025-03-30 07:00:00.000", '{"tokens": 12}'),
        (1, "partner", "Ça va?\tNon.", "2025-03-30 07:00:01.5", '{"big": 123456789012345678901234567890, "f": 0.1}'),
        (1, "coach", "x" * 32_000, "2025-03-30 07:05:00.25", None),
        (1, "user", "late", "2025-03-30 07:12:30.777", '{"nested": {"a": [1, {"b": null}]}}'),  # after end
        (2, "user", "still going", "2025-11-02 05:31:00", "{}"),
        (2, "partner", "", "2025-11-02 05:31:02", None),  # empty content: refused
        (3, "user", "hello", "2025-06-01 12:00:10", '{"model": "claude-haiku-4-5"}'),
        (4, "user", "gone quiet", "2025-07-05 00:00:03.25", None),
        (5, "coach", "Ünïcode ✓ \\ \" '", "2025-08-08 08:09:59.999", '{"s": "a\\u00e9b"}'),
    ]  # fmt: skip
    for session, role, content, at, meta in messages:
        if meta is None and not v.json_optional:
            meta = "{}"
        await conn.execute(
            'INSERT INTO "Message" ("sessionId", "role", "content", "timestamp", "metadata") '
            "VALUES ($1, $2, $3, $4::text::timestamp, $5::jsonb)",
            session, role, content, at, meta,
        )  # fmt: skip


async def fix_refused(conn: asyncpg.Connection) -> None:
    """What the dry run tells the operator to do about the one refused row of fill()."""
    await conn.execute("""DELETE FROM "Message" WHERE "content" = ''""")
