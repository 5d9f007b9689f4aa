// What a TypeScript service of the Prisma package does, on the schema `coach-db generate --prisma`
// writes: nested writes, the README's nested include, and the database's refusals. One process;
// prints one JSON object for tests/test_prisma.py. Type-checked there with tsc (checkJs).
// @ts-check
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "@prisma/client";
import bcrypt from "bcryptjs";

const prisma = new PrismaClient({
  adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }),
});

/** @param {() => Promise<unknown>} write */
async function refusal(write) {
  try {
    await write();
    return null;
  } catch (error) {
    const e = /** @type {{ name: string, code?: string, message: string, meta?: unknown }} */ (error);
    return { name: e.name, code: e.code ?? null, message: e.message, meta: e.meta ?? null };
  }
}

try {
  const scenario = await prisma.scenario.create({
    data: {
      name: "Asking for a raise",
      slug: "asking-for-a-raise",
      description: "Your manager has five minutes.",
      partnerPersona: "A busy manager",
      partnerSystemPrompt: "You are a busy manager.",
      coachSystemPrompt: "Coach the user.",
      partnerModel: "claude-sonnet-4-5",
      coachModel: "claude-sonnet-4-5",
    },
  });
  const user = await prisma.user.create({
    data: {
      email: "ada@example.com",
      username: "Ada",
      passwordHash: bcrypt.hashSync("password123", 10),
      sessions: {
        create: [
          {
            scenario: { connect: { id: scenario.id } },
            messages: {
              create: [
                { role: "user", content: "I would like to talk about my salary." },
                { role: "partner", content: "I have five minutes." },
                { role: "coach", content: "Good opening.", metadata: { tokens: 12 } },
              ],
            },
          },
        ],
      },
    },
  });
  const read = await prisma.user.findUnique({
    where: { email: "ada@example.com" },
    include: { sessions: { include: { scenario: true, messages: true } } },
  });
  if (read === null) throw new Error("the user just created was not found");
  const session = read.sessions[0];
  const ended = await prisma.conversationSession.update({
    where: { id: session.id },
    data: { status: "completed", endedAt: new Date(session.startedAt.getTime() + 90_000) },
  });
  const badRole = await refusal(() =>
    prisma.message.create({ data: { sessionId: session.id, role: "bot", content: "Hi" } }),
  );
  const mixedCase = await refusal(() =>
    prisma.user.create({ data: { email: "Grace@Example.com", username: "Grace" } }),
  );
  const badStaffRole = await refusal(() =>
    prisma.user.create({ data: { email: "lin@example.com", username: "Lin", role: "owner" } }),
  );
  // The database keeps the counter exact: a write to it is ignored, not an error.
  const counterWrite = await refusal(() =>
    prisma.conversationSession.update({
      where: { id: session.id },
      data: { totalMessages: 99 },
    }),
  );
  console.log(
    JSON.stringify({
      userId: user.id,
      sessionId: session.id,
      scenarioSlug: session.scenario.slug,
      scenarioVersionId: session.scenarioVersionId,
      totalMessages: session.totalMessages,
      roles: session.messages.map((m) => m.role),
      messageIds: session.messages.map((m) => m.id.toString()),
      metadata: session.messages.map((m) => m.metadata),
      endedDuration: ended.durationSeconds,
      endedVersion: ended.version,
      badRole,
      mixedCase,
      badStaffRole,
      counterWrite,
    }),
  );
} finally {
  await prisma.$disconnect();
}
