from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Migration 10 (issue 22): idempotency keys, so that a service can retry add_message() and
# start_session() after DatabaseConnectionLost(maybe_written=True), or after a failover,
# without ever storing a second row. The columns are Aerich's output; by hand below them:
# - a key is unique per session (message) and per user (session): partial unique indexes
#   message_session_idempotency_key and conversation_session_user_idempotency_key, WHERE the
#   key IS NOT NULL (rows without a key, all the existing ones, are not indexed at all);
# - a key has 1 to 255 characters (coach_db.limits.MAX_IDEMPOTENCY_KEY_CHARS): CHECKs
#   message_idempotency_key_length and conversation_session_idempotency_key_length (the
#   VARCHAR bounds it too; the CHECK also refuses '' and names the rule).
# On a large live database, build the two indexes first by hand without blocking writes
# (CREATE UNIQUE INDEX CONCURRENTLY with the same names and WHERE clause): IF NOT EXISTS then
# makes this migration instant. Adding a nullable column without a default is instant.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "conversation_session" ADD "idempotency_key" VARCHAR(255);
        ALTER TABLE "message" ADD "idempotency_key" VARCHAR(255);
        COMMENT ON COLUMN conversation_session."idempotency_key" IS 'start_session()''s retry key: unique per user, a retry returns this row';
COMMENT ON COLUMN message."idempotency_key" IS 'add_message()''s retry key: unique per session, a retry returns this row';
        ALTER TABLE "message" ADD CONSTRAINT "message_idempotency_key_length"
            CHECK (char_length("idempotency_key") BETWEEN 1 AND 255);
        ALTER TABLE "conversation_session" ADD CONSTRAINT "conversation_session_idempotency_key_length"
            CHECK (char_length("idempotency_key") BETWEEN 1 AND 255);
        CREATE UNIQUE INDEX IF NOT EXISTS "message_session_idempotency_key"
            ON "message" ("session_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL;
        CREATE UNIQUE INDEX IF NOT EXISTS "conversation_session_user_idempotency_key"
            ON "conversation_session" ("user_id", "idempotency_key")
            WHERE "idempotency_key" IS NOT NULL;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "conversation_session_user_idempotency_key";
        DROP INDEX IF EXISTS "message_session_idempotency_key";
        ALTER TABLE "message" DROP COLUMN "idempotency_key";
        ALTER TABLE "conversation_session" DROP COLUMN "idempotency_key";"""


MODELS_STATE = (
    "eJztXW1T27oS/iuafIHOGC6kBVp6750JIT3lFEInCe2Zc9LxUWwl0cGWUsuGZnr571cvdu"
    "J3bJOkps2XFktaWdmVVrvPruTvDZuayGL7Lc/EbucOEbdxCr43CLQR/yOlVgMNOJst60SB"
    "C0eWbA5FOx0tGo6Y60BDdDmGFkO8yETMcPDMxZQIgmuCgDvFZAIgYC4cj4GN7BFygIlNgA"
    "mvQ7yc90rfyr9NyN8FGQIOGnsMMeBSYEwhmSBAORGykIsAdvfF201q8Nfzvtf5oiEZki4F"
    "Y+ogPCHgFs3ZqeyA/3BsAeq5Fr4T5LzIofcMQGICaBjUIy7jHQDBabYProk153UAOZB5Dh"
    "qS3b/7nQG4vG63LoFBoTHVzdG+Xwv+A3Yo2flbAwyhRe2/Zg6+g8Z8fzZ/AWw450M3OfP5"
    "D+Yv3mHgDloef5VgjUfwVw/pLp0gPjCHM+ivL7wYExN9Q0w8fm+MMbJM+beStKDjHenYFH"
    "/xfwUF+jZzEGNcmizoxJ86xLMsMTXmMzkzGrIxZ4p8eNBA5AV8mNRZS8/MG/2DDHddoxbT"
    "eOX9Gg6CLjJ16K6gb9FwdqvL7iNLW3FElusB7RmeXBD3nWwrVtBIN6jl2WTZfjZ3p5QsCL"
    "Ba6BNE+NTkY+ZlruOJhS5G5auFYO2rWbdsoqZbiMZEY+hZ7vI38QEsyxq63r0e6HxZ6Hoj"
    "oUoCitCi94sMzjKxGvmCkwyYiCHsvWk2X748aR68PH599Ork5Oj1wWveVo43WXXyoAaz5J"
    "bqSvLs4reL7kAMiHJdp/SgKHiQNFyN6EvRLrkflXFUCue8xsU2SpdDlDImD9Mn3Q/+iEsn"
    "kEWeeIKCpXyW2jtXQP2v1rl62t1p3/R6ne5AH1xcdfqD1tXHnRdPERr/0abQkf5kyZHH4o"
    "XidTZjXy3J09agI2qasnQeK909fhEV4KIT8Pli8B6IR/DndbcjWU6ZO3HkG5ftBn+KZcw3"
    "QJfqhGtJaIbmdVAacFIu+GAmhHVfdB5kLsUwyeMLMkXk/rieLvHcJdnoy42Wb58O4LssdN"
    "XGyGcl2CUUvPvwIr5N567Y5uGrk1evXx6/WizURUne+gzWYpzjyOYbdJLp7Sl08ri+IIsx"
    "ng+4boxHe2KsYb6/Bd2by0tAiYGkpYHMghKw4TfdQmTiTgXbj17l8PtTq9d+3+rt8laxRd"
    "X1q5qqLiEUfzNNyqNDPFvK5IKPCvLBp8nGp64kltWpwHy5tHsdrnFOgdLhQ3Lz8Vw+ezNT"
    "Pp93LjviWdmXQ/LpovP5FNxhdD8knV6rz6uk2KpI7biAzOJqcCmx47i8FjZh0eWzIKi1hP"
    "rSB+CmM6OeY6BTqb24nW0gAh1MNbC/n3AuinD/6KAA+48OMvkvqqICWNrixW24JU2dt42P"
    "DrahMxfOFKDjwHWqtGdsxMpbyiTqbRTczaNEdRbMgEtihhxGyUIoI2RRMpHu8a6/0WtACe"
    "pt4MxyL1X5umLz+TFbvnLdWVIqv/evuxl29pIkbmRj7lX/D1iY1Ug23+Xv4j7GCAkwQgNw"
    "7CLny8NbMIOM3VPHZHzfFyADA0P/x5nDRjFx5PBaMDBiaQc6a/eq9UdcnbUvr8/iJrTo4I"
    "yLSziq49uQsyQKRtC4vYeOqSdqaJNmtU1W2U07XgIJnEjui18sfp8PdbUpueNTHAq+9pXD"
    "3UhBxNKaaXnQmBEi0FmIohBGNhNNsCHAnmU3QjlC37wmAtfyN6l09Kt8FyVRItGLr8S4le"
    "b4PuoqsZxlr9pmcZFfBRR5or7Nhju46FwvRf0Ws+6X1JuzHaVLcReMJb08uk5b7cHFJ26h"
    "qwZD0r6++ijM+XNu71N7Jix6c0haZ63u+XVXlMIRJCYl1ZywNwXsyTeZ5uSbuDUZXVtl8K"
    "go5RaPeu54FOJcrjIPwnQrmAWbMZsKC/yZCDjgSa6EXepCS7f5rglTbeLM3S5JWMlbqbTA"
    "D+KCPUhq4K4nQ3pUBPfUGDXuRM5cgL4JC+uHeB6m5wQ2H3+TWYbdaaR1dg8DDQD2wHJTED"
    "HKxeg3z35h6abiiplcD1FsbnYfxll9mGTvmWfPkAlG82iAmhvxiI95Du4d7KK3Kr5tIfXI"
    "zXrmh7CLWhkrFgA2kT2jLiLGXL9F8zKIYQppnUF3OecD1273xY5gvKtgrFOgXi7QEx9RhH"
    "4t/9dziEgQEJLiGruCLdg8OioEyB/lAPJHCYvQdwVLgllRqs2toNo7Rymc9VVNRQ5HqevM"
    "aQUcOtwJclUCjMJHBCToQALusTuNZd2MsaXquXbDhC+YH7R7hzCNguIJUdRZJBud/AloL8"
    "rgJHffqXSqD2ieAAZiTPXhuBu/m2fG3Idg9gSly93KgfcLcCo8qfhvV9FBuXe2+u3WeaeR"
    "ql5WwNZ+qKuflLWxDSvC3h53tXoX7UE6f/VM27Iynz8te6wHuzenuUvLK7r9ZcgtO4YQQv"
    "QzHeEzn/Ldhx6yYEaGgS/CK9VLfUT35JXysM4wS0eFBnvIQHzEjZQIS6yFlhdc8QONuhNq"
    "/Ghc5aNDZXQZihRZP6x5D5mfGKOBKbVMkTBMqF8LLTnNk+GVJ/VUMsoi84/0KWTTbfijVk"
    "aOlhP+CAktwdxs/zdKVeu0mfdXrfZe/32reXQcpGxY9B45e4bYE1QimqZ8XCx2Q8vi7jGD"
    "VlGzPprJVCT97Dg7++w4kXym0vFLZQcsKJ6UHLAp+fTE0QO1QZoShFCqs8z+sNbgfyQAIb"
    "VmlQhEmHAbiKpznKJQIEqJc1QKM4wQ1Vplfp5SaUNj99Q/keTn61IHtC8vqijGlwdFsgx5"
    "q0zVKOtqk4sT2NQp1mHI3M42C+1Qo2JH0TzHT4kJJ8moA10KthV/tS7ADDouEc9cWH6RPI"
    "aVcfBsJd2WNBR9INr3j4TK47PMnomH1R5XWmXX29NKtTyt5FBlLFRJ3gloa62Mb/qdnsr1"
    "HpKPrd6gKx791SgyeVrt96dqKVbRy3kCCbTySaZOPklaq8T1T9hGBTLgKynLXF2Q1FkOK0"
    "nH6PwxyLdJF1bO5XX3t6B53FCNsjyi48rYpBHCrU363G1SccCd6p5T7uBYmKjOEex3nivS"
    "9e+oSBN2kEEdAVtVikgfvHpdJCTNm2XHpGVl7NQRcqHYpcq46mGazTvrjX+PPSJPp4GRhy"
    "0XE7YvXvvfRt6KHDZ2vj/snJ7+wygZDRspq1H+YEDl0RE+QegtIkwDFpTpEprC6UucVtq0"
    "k//rpIVw5RKkzOUkhfjW+nPIC4n4FUWTFiJE28D444Hx0BGRJwYXM46qPDN2F44PRmZaer"
    "T8x6AZi2B6CpwRDrRn4xnhyP7jgEYLcBVqRo/7uNQ/B8TQKbifUoky+H4OmFlwrqK8U3ov"
    "a6THA/7xzIl/cUwE2ljHC0qCHJjpy/MYkqfboFidFJyWAyrI/0vs+0H7n8KBjZvLRYDbZg"
    "5w2zxIHBBnljcpw9+g/Wr4u46p27jpXe4xOOaqRUYXZXCRa3eXqx8NmHiC/SwVxllvITCd"
    "z6bcLK5iOh0WkshhjkQOkxIJ/5qEYLLBmxjZTzH/Nw3g+FuQ7udflGF/CmmdRSADS9F4gt"
    "p4NXHEd+RgNH6yS7hWEbE5c5Gtq6yzKoJKdFBncdV2xahrBSsLI4N8K4onrIzSd+4kCOvM"
    "/kaLuFOHzrCh0CuAKx2MXsvOrWZzaf7HyLbcr8b9iJcXiwFTaiFIMjyxMF2M+SNOuC7uB6"
    "ZumPsL8zeadDAeIweZwm0WwceCpmpefPf6+jKif84u4grm5uqsw0UgBcAbYTcSBN5eUbmN"
    "esWjXup6uiozIUq5nQl1ngkB30JTYXEMoGAyWAK+fuKhip8buk47qP5EhtX2IFG9T6PE2Z"
    "aD0Ic4+zhQHz4iVgCwJwDbtid7AYzAGZtSV+UNBh3usJTTWJo86+8iEr8bIAWyX8srUkD7"
    "vyLBioANX2JY/hZw3yTg/kzuwqjguxxqoCmTHVQsPTTzNn9k/NdBGmuPl2yRxFqIY4sk1k"
    "YUvwaSWDEKu0UOnz+3t5hVKYk8T6SiCGa1vb5qU4mK2+tmVnTdTIH8xF8KYPvxl8+sFXSS"
    "d1alIE3BXVbZ8FJwadbjkFKf2ogSJDMxg7xMFsnYZGCXOppkJsBMlyeRNeB4hIW+ifgiiS"
    "SttOfHsz63SNHG7ytJ8rUjitM5+7TPYm0oe1D2rgGRNrgn1ANhWESHxfl7KqKwmKi8Qtmi"
    "SvR7LV/GEqu9bK5smKbOvkPjHDORnAaCwdbCiwi+mFL6xp4EYa0PJjkTSprYBGKw/pfhxt"
    "QB/dbVZZlshA2cOQq2jxRj55H8jwXZBtM/FiVhYWRs0Fd87jPx5WAsz04sN8ZShsuaM0Ge"
    "1/H/hvhenjKQosshVB7PmJU3t0W+Cy0+oGzS6Keh1af4xP0cyMR8yxDXdEDTxqTKQlnx9/"
    "gMvoEh4mLOjuyLKTMNowzqZ3EB+v0UERDRvNrC3hQSEjPQ/3b3j4kIbUGpLSi1TaT6dWbC"
    "NpGqnCVa79ygFnKwMW2kADV+jZYH1cBlm8fAmmw2bOGResEjmfZVtmeYbVTVyh+ven51HU"
    "6fWFQlOOw3/wm5u6a4dMYlYnl33mZdIlbLS29XkYTxc3zd9uH/LbpX+w=="
)
