from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "scenario" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(200) NOT NULL,
    "slug" VARCHAR(100) NOT NULL UNIQUE,
    "description" TEXT NOT NULL,
    "partner_persona" TEXT NOT NULL,
    "partner_system_prompt" TEXT NOT NULL,
    "coach_system_prompt" TEXT NOT NULL,
    "partner_model" VARCHAR(100) NOT NULL,
    "coach_model" VARCHAR(100) NOT NULL,
    "is_active" BOOL NOT NULL DEFAULT True,
    "created_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS "idx_scenario_is_acti_b5a04e" ON "scenario" ("is_active", "name");
COMMENT ON COLUMN "scenario"."slug" IS 'URL-safe: lowercase letters, digits and single hyphens';
COMMENT ON COLUMN "scenario"."partner_persona" IS 'Who the AI partner plays, in brief';
COMMENT ON COLUMN "scenario"."partner_model" IS 'Anthropic model id';
COMMENT ON COLUMN "scenario"."coach_model" IS 'Anthropic model id';
COMMENT ON COLUMN "scenario"."is_active" IS 'Offered to users';
COMMENT ON TABLE "scenario" IS 'A hard conversation to practise: who the partner plays and how the coach judges.';
CREATE TABLE IF NOT EXISTS "user" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "email" VARCHAR(254) NOT NULL UNIQUE,
    "username" VARCHAR(100) NOT NULL,
    "password_hash" VARCHAR(255),
    "is_staff" BOOL NOT NULL DEFAULT False,
    "created_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
COMMENT ON COLUMN "user"."email" IS 'Unique, case-insensitive: stored in lower case';
COMMENT ON COLUMN "user"."username" IS 'Display name';
COMMENT ON COLUMN "user"."password_hash" IS 'argon2id hash; NULL for SAML users';
COMMENT ON COLUMN "user"."is_staff" IS 'May sign in to the studio';
COMMENT ON TABLE "user" IS 'Someone who practises conversations (or, with is_staff, runs the studio).';
CREATE TABLE IF NOT EXISTS "conversation_session" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "status" VARCHAR(9) NOT NULL DEFAULT 'active',
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ended_at" TIMESTAMPTZ,
    "total_messages" INT NOT NULL DEFAULT 0,
    "duration_seconds" INT,
    "scenario_id" INT NOT NULL REFERENCES "scenario" ("id") ON DELETE RESTRICT,
    "user_id" INT NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_conversatio_user_id_dd86df" ON "conversation_session" ("user_id", "started_at");
COMMENT ON COLUMN "conversation_session"."status" IS 'ACTIVE: active\nCOMPLETED: completed\nABANDONED: abandoned';
COMMENT ON COLUMN "conversation_session"."total_messages" IS 'Number of messages, kept exact';
COMMENT ON COLUMN "conversation_session"."duration_seconds" IS 'ended_at - started_at, seconds';
COMMENT ON TABLE "conversation_session" IS 'One practice conversation of a user in a scenario.';
CREATE TABLE IF NOT EXISTS "message" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "role" VARCHAR(7) NOT NULL,
    "content" TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "audio_url" VARCHAR(2048),
    "metadata" JSONB NOT NULL DEFAULT '{}'::jsonb,
    "session_id" INT NOT NULL REFERENCES "conversation_session" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_message_session_f19c74" ON "message" ("session_id", "timestamp", "id");
COMMENT ON COLUMN "message"."role" IS 'USER: user\nPARTNER: partner\nCOACH: coach';
COMMENT ON COLUMN "message"."audio_url" IS 'Future voice recording';
COMMENT ON COLUMN "message"."metadata" IS 'JSON object: tokens, latency, model, ...';
COMMENT ON TABLE "message" IS 'One turn of a conversation: the user, the AI partner, or the AI coach.';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztW21z2rgW/isaf2k6QzMpTZqUvXNnHEK33E2gA2R3Z2/ueIQtQI0tuZLclOnNf19Jtv"
    "E7wQS4NJdPwbKOJD/nRec8Un4YHnWQy4/blHxDjEOBKRkizuUfowV+GAR6SP5Y1q0BDOj7"
    "SSfVIODY1XJ2SsDiKYkxFwzaQvaZQJcj2eQgbjPsi3Bqo08Q8FUXbCOQHgbQCYAg4IgBTO"
    "QvbiMCGabHalyH2nJgTKbrDxEQ/DVAlqBTJGaIyYH+/R/ZjImDviOuHn8YE4xcR/821CgW"
    "dpQkF5AJ5FhQGEoCffdZ+MU8HiSCkwSuq1Ca+xokQ3eWeOiHR9XRv7f0HBklhLPodiuW7R"
    "LxUXdUHz+2bOoGHkk6+3Mxk8jHvTERqnWKCGJQLlW2CRYo9NWSIqXFCgmBSLqECKRkHDSB"
    "gSuSD5ILSNoMy+r1R9awM7Iso6DfWCKlr6hJKkrZhlwq118/VUt403x7en568e796YXsop"
    "e5aDl/DKdOgAkFNTy9kfGo30MBrURtCahSaSLgRWDbM8g6JPA0ul25JEhsVEA5kc4hLT8h"
    "j3SM6zKo44YE68Q9FsAqi/4Wr6W8PetLZnvU/b3TAmGHO9Lu33y+7ow6Vy3pFp7vIrnAO2"
    "Jemr2rfk+1wjEkDiXIyftUhY48+N1yEZmKmXz8sEQfv5uD9idzcPThtRqZSucM40QvetFU"
    "b5TCMgqKvaqgpCsJrcAeKneBrGROQU4kehz/2Ja6Sn1j+NW9Cp+OXrVvB4NOb2SNujed4c"
    "i8+fzq9XP8hSHo9Ik7j/x0iTIWE6rpPM6/uhpTc9RRb5q6dZ5rPXqf09xiEPBHd/QJqEfw"
    "l7QiDTnlYsr0jEm/0V+GWhMMBLUIfbCgkwopcWuMZMYSkER5HTtIy23ACqKlPt8INhMgfx"
    "IFx5gs1bCgArqWJ3dNOEUlQblytysKPr3zbcrBT/KKPSlG4F7gjWW2IfOOeI0NcI98AdB3"
    "lQXtcCdMwHYCFudlcianDtxlomsBvhtfWkQA8AYkm0IDpFa/e/jjpNOqldblpHZn5Xuf4i"
    "XIplLyFVFNSRwQjRBVZcjkvjRnVnAV0f1IGcJT8huaF3LmHKhRNXkbDfOTgfsYW0/cmsQx"
    "Bh8WdVvaqOS3yy+WabZqb5vDtnnVMUqjwQZgHaaGeqHQ5qJgBt6BzEIG3fYoLKTH0L5/gM"
    "yxKky5Ote4jCQ//jZArt7tqiG/CUd5QYhr8GiTpkDLwFl85TW9fAskEhQnmlvNlIOrhGFK"
    "IVnNKnmpTisRSSJgEemTpoHkl86QpoEa+pfZBb5MDoh6pixusim0Z+Xk0maGrUk4RSxaZP"
    "qqZpEBwfPVg2zaGfF0iaf/L9zTh2bz3bvz5sm79xdnp+fnZxcni/20+GrZxnrZ/VXtrY10"
    "efU0Q8Woi9blp2LZ3bFTa2Tnt8POoKUd5o58NgejnnqMXEaRVWb7Uyv0l3XoqGUKiemo80"
    "o66jxPR8m5BCIlHMRIelK5O6RE9lkPG2EcOn+OMmRDjOTRjfnn6wzhcN3v/Rp3TyHfvu5f"
    "5iDPxLg6xE9G8MD/7TM9tAr/BwNHpnwBc8ujYbkNZITWcr8dcRQfA5lOIPCNqtMqhmzKHK"
    "XnNSJe8+T0YoWgp7pVxr3wZdYPPSSg2qWK8P9r2O+Vw5+WyXsgtgX4L3Ax31qJbfxjEhBb"
    "H/mNA+wKTPixmvafxcOTlEfeGa9+PL5qtb5wSsZ3Rok36g8GdPwF2UIaCL1HhDeArBIQse"
    "cNoFPWBjg+LqSNtQOqmmh5QM3HzpzfqQHyATWbQq7KPGWEDjTJ0zRJ6rz7mSV9xbn7Twb3"
    "ytV9xtLKuZPq2n6bheuCWimpXNO0S3XpmuZ5nq5dTSD3NSd7d0HQ6FIDRy3wMKO6oIyyZe"
    "C7cM4BJA6Y0Qf9RufN4EvgTBEvVrHbmKBmPYu5lRxca0wPlyf2KcA1lpSm+m+NZCzu/yLK"
    "oHzSdbJSznWyJOU6Kdx9cINpHXzj/pvBdxuma9wOrt9wOJGhxaUPiNmQIyCju5DhpwEcPM"
    "UiDC9cQu8iMJv7M5lcrZMGv11JI2+XaORtUSPprykoppoCyIm9CPvfNQ0QbUGWL02FkpIq"
    "pBr+EtF9VoHxR7TrJtRxuPE21H3FMcNo8uzCYqsq4nMukGf5jHp+LaqscoB9VtfeeoxOzd"
    "ZXRoX4QRXP8AxdEtTZ0guC+wy/YRIxY9THdsiBALzWDdKt7NyhNdfGPyd2QH899DNVXu4k"
    "kVIXQVJRiaXlcuCPpeC20I9T3TT6i/Q3e748mSCGHFU2qyOsFVPVZaeE/f51Jv5cdvMB5v"
    "bmsiNVoBUgO2GROUpM2TxDcL2701nJw9nJz352EvjOmpaQlTxYwj5bQskl68VlngJJ+tTV"
    "KB7zb8WIXeNq1Mumrrd6TUrfjyxhmuN7k9Usc3xB82mGeUg9RAnSPG/M+vIMH8zBEWUN8I"
    "DFDMjdmAs4mTQAC+QLVaJyoQ5YXxep5Y2O/DSnfCB+d0n8Ig/ikjS6o5or/gknlthnblKP"
    "3gCKlHyDCUeEY5V7tqQtUpXjYRKylrrHOrl18+x0FZb47LSaJVbvivfd6zLxaZm9rmmuMF"
    "fUF4gXuxfVjA85f6Ayvs8gn9Wr5nOC+3wjBbIpJU3sALXYX0Dv9voaTCgDQ/Pmuk6tk3eB"
    "s5Vc4GyJC5yVlJd6+6hfXS7EdlhcLlrSyqjYoG+k7XM8JSr2CJraGA915qG6ONSZB0s41J"
    "mHOvN5daaJGLZnRkmlGb1pLKs1YdLnqWqzGoZDfbdf9Z1ypdIrDtWpbUpknwuKda/3bCNr"
    "VU5VA+Go+wtEd0sHfhX/qVN9W736P3V2cFn9f3PavbEL5jX2/s1vZo9/A3FFq7M="
)
