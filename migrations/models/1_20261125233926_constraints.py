from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


# Hand-written: Aerich emits no CHECK constraints (it ignores CharEnumField choices and
# Meta.constraints) and no expression indexes, so the database-side invariants live here.
# Keep the enum lists in step with SessionStatus and MessageRole (tests/test_constraints.py checks).

async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE UNIQUE INDEX "uid_user_email_lower" ON "user" (lower("email"));
        ALTER TABLE "user"
            ADD CONSTRAINT "user_email_format" CHECK ("email" ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
            ADD CONSTRAINT "user_username_not_blank" CHECK (btrim("username") <> '');
        ALTER TABLE "scenario"
            ADD CONSTRAINT "scenario_slug_format" CHECK ("slug" ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
            ADD CONSTRAINT "scenario_name_not_blank" CHECK (btrim("name") <> '');
        ALTER TABLE "conversation_session"
            ADD CONSTRAINT "conversation_session_status_valid"
                CHECK ("status" IN ('active', 'completed', 'abandoned')),
            ADD CONSTRAINT "conversation_session_total_messages_nonnegative"
                CHECK ("total_messages" >= 0),
            ADD CONSTRAINT "conversation_session_duration_nonnegative"
                CHECK ("duration_seconds" IS NULL OR "duration_seconds" >= 0),
            ADD CONSTRAINT "conversation_session_ended_after_started"
                CHECK ("ended_at" IS NULL OR "ended_at" >= "started_at");
        ALTER TABLE "message"
            ADD CONSTRAINT "message_role_valid" CHECK ("role" IN ('user', 'partner', 'coach')),
            ADD CONSTRAINT "message_content_not_empty" CHECK ("content" <> ''),
            ADD CONSTRAINT "message_metadata_is_object" CHECK (jsonb_typeof("metadata") = 'object');"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "message"
            DROP CONSTRAINT "message_role_valid",
            DROP CONSTRAINT "message_content_not_empty",
            DROP CONSTRAINT "message_metadata_is_object";
        ALTER TABLE "conversation_session"
            DROP CONSTRAINT "conversation_session_status_valid",
            DROP CONSTRAINT "conversation_session_total_messages_nonnegative",
            DROP CONSTRAINT "conversation_session_duration_nonnegative",
            DROP CONSTRAINT "conversation_session_ended_after_started";
        ALTER TABLE "scenario"
            DROP CONSTRAINT "scenario_slug_format",
            DROP CONSTRAINT "scenario_name_not_blank";
        ALTER TABLE "user"
            DROP CONSTRAINT "user_email_format",
            DROP CONSTRAINT "user_username_not_blank";
        DROP INDEX "uid_user_email_lower";"""


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
