from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Migration 15 (issue 20): the audit trail page filtered by a row id alone (`?row=42`, any
# model), newest first. The page reads `WHERE row_id = $1 ORDER BY id DESC LIMIT 51`; the
# indexes that hold row_id lead with the model (migration 7's (model, row_id, id)), which
# PostgreSQL 15 cannot skip over, so it walked the primary key back from the newest event,
# testing every event of the trail for a row with few of them (23 ms at 82,000 events; it
# grows with the trail). (row_id, id) reads the page in order from that row's newest event.
# MODELS_STATE is migration 14's: the models do not change.
#
# CREATE INDEX blocks writes to audit_event while it builds. On a large live trail, build it
# first by hand under the same name; IF NOT EXISTS then makes this migration quick:
#   CREATE INDEX CONCURRENTLY audit_event_row_id ON audit_event (row_id, id);


async def upgrade(db: BaseDBAsyncClient) -> str:
    return 'CREATE INDEX IF NOT EXISTS "audit_event_row_id" ON "audit_event" ("row_id", "id");'


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'DROP INDEX IF EXISTS "audit_event_row_id";'


MODELS_STATE = (
    "eJztXW9T2zgT/yqavAFmDANpgZY+88wESK/cQegkob25S8ejxEqiqyPlLBua6cN3f1aSnf"
    "g/dkhS0+ZNSyStLO9Kq93fruTvtQm3iC0OGp5F3eY9YW7tDH2vMTwh8EdKrYFqeDpd1MkC"
    "F/dt1RzLdiaZN+wL18ED2eUQ24JAkUXEwKFTl3ImCW4ZQe6YshHCSLh4OEQTMukTB1nUQp"
    "RBHYFy6JW/U39bGJ6FBUEOGXqCCORyNBhjNiKIAxGxiUsQdQ/k0y0+gMdD3+t8UI/1WIuj"
    "IXcIHTH0lczEmeoAXpzaiHuuTe8lORQ5/EEgzCyEBwPuMVdAB0hyWhygW2bPoA4RBwvPIW"
    "gXCHpsPoqhxwaSZ6qemFPiCM529ww0oSMHq5o3e2iCZzBeCzgObwlP2xHoHtue7L8bfieQ"
    "Be8xeB3KBAJpOTPZWr6iHCYHVvWJfCPUhzGhMRZjtDvgtjeB5vBGglpEtVQz4B3SUlfdHU"
    "xne4r5HqP/esR0+YhASwdE8PcXKKbMIt+IkD+/14aU2Jb6W88lSQfjMKkl/4J/JQX5NnWI"
    "EPCGIujEn5zMs205+WZTNfdqqjGwXf14NFDkAcAT7qylZ+H1/yEDd12jlgtl5f0OHIJdYp"
    "nYXUHfsuH0q6m6jygPzRFVbga053R0xdz3qq1co31TT6xF++nMHXM2J6BalYwIg6kPY4Yy"
    "1/GkKpGj8hVPoF30rFs00dMtRGORIfZsd/FOMIBFWc00W7dds9PsmmYtoawCipBa8YsGwD"
    "K53mFJKwaM5BD239brr16d1g9fnbw5fn16evzm8A20VeNNVp0+6sEsuKW7Ujy7+u2q1ZUD"
    "4qBNtaaVBY+KBha1uRDtgvtRGUelcAk1Lp2QdDlEKWPysHzSg+CPuHQCWeSJJyhYyGexP+"
    "QKqPOvfal/7e5c3LXbzVbX7F7dNDvdxs3Hnb3nCA1e2pJa2J8sOfKYP1A+biLEv7biaaPb"
    "lDV1VTqLle6e7EUFOO8Efb7qfkDyJ/rrttVULOfCHTnqiYt23b/kMoYt1uUmAy2JrdC8Dk"
    "oDTqoFH8yEsO6LzoPMpRgmeXpBpojcH9fzJZ67JGsdtZXDBu0g2Mexq7demJVol3H0/o+9"
    "uCGQu2LrR69PX795dfJ6vlDnJXnrM1iLcY6TCZgASaZfjLGTx/U5WYzxMOCqMZ7sy7GG+f"
    "4Ote6ur8GGGBBtq1gFJTDB30ybsJE7lmw/fp3D70+N9sWHRnsXWsUWVcuvquu6hFD8zTQp"
    "jybzJkomVzAqDINPk41PvZRYVqcC8+Vy0W6CxjlDWof32N3HS/Xbm1rq92Xzuil/awu2xz"
    "5dNT+foXtKHnqs2W50oEqJbRmpnRSQWVwNLiR2EpfX3CYsunzmBJWWUEd5GWCnC+45A3Km"
    "tJeBxIAw7FBuoIODhPtShPvHhwXYf3yYyX9ZFRXAwhYvbsMtaKq8bXx06ASD1wPuGuLDwD"
    "lbas/YiJW3kEnU2yi4m0eJqiwY6aZq53YulD6xORspB3zX3+gNpAX1bu4uC6K9abn5/Jgt"
    "X4MDIimV3zu3rQw7e0ESN7IpuPD/QzYVFZLNd/Ve4GNocMBAeOgS58vjOzTFQjxwxxKw70"
    "sYQ6Ce/3JWr1ZMHDm8lgyMWNqBztq9afwZV2cX17fncRNadnAO4pKO6vBryFmSBX08+PqA"
    "HctM1PA6z2qbrJrUJ/ESzPBIcV++sXw/H0y74OweprhCbTra4a6lYG5pzYw88G0QIjBFiK"
    "IQCjeVTShYbeFupHLEvnnNJHLmb1Lp+Fr5LkqiRLIXX4mBleb4PuoqsZxFr8ZmcZFfBRR5"
    "pr7NhjtAdK6Xon6LWfcL6s3ZjsqluA/Gkl4eXaeNi+7VJ7DQdYMeu7i9+SjN+Uuw9/lkKi"
    "16q8ca543W5W1LluI+ZhZnyzlhbwvYk28zzcm3cWsyurbK4FFRyi0e9dLxKAJcXmYehOlW"
    "MAs2YzYVFvgLEXDAk1wJu9zFtjmBXROn2sSZu12ScClvZakFfhgX7GFSA7c8FTTkMnyox2"
    "iAEzl1EfkmLawf4nlYnhPYfPAkqwy700ir7B4GGgDto8WmYKDQ6DfPfmnppuKKmVwPUWxu"
    "dh/FWX2UZO+5N5kSS0Z9IyFwGXZWQeIHh7rknY6g20T/BLNe+EHyolbGigVALTKZcpewwc"
    "z8SmZlEMMU0iqD7mrOB67d7t6OZLyrYawzpB8u0RMfUcR+LfzrOUymIEhJgcZewhasHx8X"
    "AuSPcwD544RF6LuCJcGsKNXmVlDlnaMUzvqqZkkOR6mrzGkNHDrgBLk6xUbjIxISdDBDD9"
    "Qdx/J6htTW9aDdKIMF84N27xCmUVA8IYoqi2Sjkz8B7UUZnOTue52w9QeZJYCBGFN9OO7O"
    "7+aFMfcxmD1B6WK3cvDDHJwKTyp4dx0dVHtno3PRuGzWUtXLCtjaCXX1k7I2tmFF2NsGV6"
    "t9ddFN56+ZaVsuzedPix6rwe7Nae7S8opufxlyy44hhBD9TEf43Kd8/0eb2Dgjw8AX4Y3u"
    "pTqie/ZKeVxnmKWpQ4NtMiAw4lpKhCXWwsgLrviBRtMJNX4yrvLR4Sq6jGU+rh/WfMDCT4"
    "wx0JjblkxJZtyvxbaa5snwyrN6KhllUflHpsz63YY/KmXkGDnhj5DQEszN9n+jVJVOm/lw"
    "07jY73xo1I9PgpQNmz8QZ38g9wSdiGZoH5fK3dC2wT0W2C5q1kczmYqkn51kZ5+dJJLPdM"
    "J/qeyAOcWzkgM2JZ+2PNygN0hLgRBadZbZH9Ya/I8EIJTWXCYCESbcBqKqHKcoFIjS4uyX"
    "wgwjRJVWmZ/HXNnQ1D3zzzz5+brcQRfXV8soxleHRbIMoVWmalR1lcnFCWzqFOswZG5nm4"
    "WTUKNih908x0+JCSfJ6CNjGraVfzWu0BQ7LpO/QVh+0YDjwTjjaNtKui1pKPpAtO8fSZUH"
    "s2wylT9We1xplV1vTytV8rSSw7WxsEzyTkBbaWV812m2da53j31stLst+dNfjTKTp3Hx4U"
    "wvxWX0cp5AAq18mqmTT5PWKnP9M7xRgXRhJWWZq3OSKsthJekYzT+7+Tbp3Mq5vm39FjSP"
    "G6pRlkd0XBmbNEK4tUlfuk0qD1Nz03PKHRwLE1U5gv3ec2W6/j2XacIOGXBHwlZLRaQPX7"
    "8pEpKGZtkxaVUZO3VEXCx3qTKuephm88567T/z2wH6HrVdysSBfOx/a3krslfb+f64c3b2"
    "j+Cs36ulrEb1woiroyMwQfhXwoSBbKzSJQyN05c4rbRpJ//XSQsB5RKkzOUkhfjW+kvIC4"
    "n4FUWTFiJE28D404Hx0BGRZwYXM46qvDB2F44PRmZaerT8x6AZ82B6CpwRDrRn4xnhyP7T"
    "gEYDgQq1osd9XO6fAxLkDD2M9ZUyvp+Dpjae6SjvWN43Myba40H/eNaIiCS0sY4HlAQ5qD"
    "AX5zEUT7dBsSopOCMHVFD/l9j3g/Y/hQMbN5eLALf1HOC2fpg4IC5sb1SGv0H71fB3HVO3"
    "dte+3hd4CKpFRRdVcBG0uwvqx0AWHVE/S0UA622CxrPpGMziZUyno0ISOcqRyFFSIuG3SQ"
    "gmG7yJkf0U83/TAI6/Bfl3s6X4j9nsTyGtsghUYCkaT9AbryGP+PYdSobPdgnXKiIxEy6Z"
    "mDrrbBlBJTqosrgqu2KUaba8MDLIt6J4xsoofedOgrDK7K81mDt2+JQONHqF6FIHo9eyc+"
    "vZXJr/MbIt95fjfsTLi8WAObcJZhmeWJguxvw+EK6L+4GpG+b+3PyNJh0Mh8QhlnSbZfCx"
    "oKmaF9+9vb2O6J/zq7iCubs5b4IIlACgEXUjQeDtFZXbqFc86qWvp1tmJkQptzOhyjMh4F"
    "toKsyPARRMBkvA1888VPFzQ9dpB9WfybDKHiSq9mmUONtyEPoQZ58G6sNHxAoA9gzRycRT"
    "vSDB8FSMuavzBoMOd0TKaSxDnfV3CYvfDZAC2a/lESmg/d+RYEXAhi8xLH8LuG8ScH8hd2"
    "Es4bscGaiukh10LD008zZ/ZPzXQRorj5dskcRKiGOLJFZGFL8GkrhkFHaLHL58bm8xq1IS"
    "eZlIRRHMant91aYSFbfXzazoupkC+Ym/FMD24y+fWSvopO6sSkGagrussuGl4NKspyGlDp"
    "8Q+cVAmYkZ5GWKSMamQLvcMRQzERWmOolsIMdjIvTVxb0kkrTSnp/O+twiRRu/ryTJ16Ys"
    "Tufs8z6LtaHsQdW7gWTa4L5UD0xQGR2W5++5jMJSpvMKVYtlot9r+TKWXO1lc2XDNFX2HW"
    "qXVMjkNBQMthJeRPDFlNI39iQIK30wyRlxVqeW+oSs/2W4IXdQp3FzXSYbYQNnjoLtI8XY"
    "eSL/Y062wfSPeUlYGBkb9A3MfSG/TUxZ8IVfvTGWMlzWnAnyso7/1+T38rSBFF0OofJ4xq"
    "y6uS3y5Wn5tWaLRz8+rT/FJ+/nIBaFLUNe04GtCWXLLJQVf49vABsYYS4FdmRfTJlpGGVQ"
    "v4gL0B/GhKGI5jXm9qaUkJyB/tfBf0xEaAtKbUGpbSLVrzMTtolU5SzRaucGNYhDB+NaCl"
    "Dj1xh5UA1etHkKrMlmwxYeqRY8kmlfZXuG2UZVpfzxZc+vrsPpk4uqBIf95j8hd9cUl864"
    "RCzvztusS8QqeentKpIwfo6v2z7+H1PRfOA="
)
