from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Hand-written (issue 20): an index for every foreign key and every filter the studio's
# sessions list offers, each with the list's sort column and the id, so that a filter whose
# rows are rare, or gathered at one end of the order (sessions still active are the newest),
# reads its page from the index instead of walking the whole order and discarding the rest
# (272,710 sessions discarded for `status=active`, a sequential scan of 321,000 for a scenario
# with no sessions). The foreign keys also make deleting a scenario or a prompt version check
# its sessions through an index. MODELS_STATE is migration 7's: the models do not change.
#
# A plain CREATE INDEX blocks writes to conversation_session while it builds (seconds at
# 321,000 sessions: see the README). On a large live database, build them first by hand
# without blocking writes, under the same names; IF NOT EXISTS then makes this migration
# instant:
#   CREATE INDEX CONCURRENTLY conversation_session_status_started
#     ON conversation_session (status, started_at, id);    -- likewise the four others below
INDEXES = {
    "conversation_session_status_started": "(status, started_at, id)",
    "conversation_session_status_id": "(status, id)",
    "conversation_session_scenario_started": "(scenario_id, started_at, id)",
    "conversation_session_scenario_id": "(scenario_id, id)",
    "conversation_session_scenario_version": "(scenario_version_id)",
}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return "\n".join(
        f'CREATE INDEX IF NOT EXISTS "{name}" ON "conversation_session" {columns};'
        for name, columns in INDEXES.items()
    )


async def downgrade(db: BaseDBAsyncClient) -> str:
    return "\n".join(f'DROP INDEX IF EXISTS "{name}";' for name in INDEXES)


MODELS_STATE = (
    "eJztXW1T27oS/iuafIHOGC6kBVp6750JIT3NKQQmCe2Zc9LxUWwl8akjpZYNzfTy369e7P"
    "jd2CYJhvpLiyWtrOxKq91nV/LPxpzoyKT7LUc37M4twnbjFPxsYDhH7I+EWgU04GLh1/EC"
    "G45N0RzydipaNRxT24Ia73ICTYpYkY6oZhkL2yCYE1xhBOyZgacAAmrDyQTM0XyMLKAbOj"
    "Awq0OsnPVK3ou/dcjeBSkCFpo4FFFgE6DNIJ4iQBgRMpGNgGHv87frRGOvZ31v8kUjPMI9"
    "AibEQsYUg29oSU9FB+yHGyYgjm0at5ycFVnkjgKIdQA1jTjYpqwDwDlN98EVNpesDiALUs"
    "dCI7z796AzBBdX7dYF0AjUZqo+3ndrwX/ADsE7fyuAIrSq/dfCMm6httxfLF+BOVyyoeuM"
    "+ewHsxfvUHALTYe9irPGwcZ3B6k2mSI2MIsx6K+vrNjAOvqBKH/82ZgYyNTF31LSnI51pB"
    "o6/4v9yynQj4WFKGXSpF4n7tTBjmnyqbFciJnREI0ZU8TDvQJCL2DDJNZGeqbO+B+k2Zsa"
    "NZ/Ga+9XsxC0ka5Cew1984aLb6roPrS0JUdEuerRnhnTLrY/iLZ8BY1VjZjOHPvtF0t7Rv"
    "CKwJALfYowm5pszKzMthy+0PmoXLXgrX056/wmcroFaHQ0gY5p+7+JDcAva6hq72qosmWh"
    "qo2YKvEoAoveLdIYy/hqZAtOMGDKh7D3rtl8/fqkefD6+O3Rm5OTo7cHb1lbMd541cm9HI"
    "zPLdmV4Fn3t25vyAdEmK6TepAX3AsapkZUX7Q+98MyDkvhnNXYxhwlyyFMGZGH7pLue39E"
    "pePJIks8XoEvH197Zwpo8N08l0+7O+2bfr/TG6rD7mVnMGxdXu+8eozQ2I/WuY50J0uGPF"
    "Yv5K+bU/rdFDxtDTu8pilKl5HS3eNXYQGuOgFfusOPgD+CP696HcFyQu2pJd7otxv+yZcx"
    "2wBtomKmJaEemNdeqcdJseC9mRDUfeF5kLoUgyQPL8gEkbvjerzEM5dkYyA2WrZ9WoDtst"
    "CWGyOblWAXE/Dh06voNp25YpuHb07evH19/Ga1UFclWevTW4tRjqM526DjTG/PoJXF9RVZ"
    "hPFswFVjPNrjYw3y/T3o3VxcAII1JCwNpOeUwBz+UE2Ep/aMs/3oTQa/P7f67Y+t/i5rFV"
    "lUPbeqKetiQnE307g8OtiZC5l02aggG3ySbFzqUmJZnwrMlku732Ea5xRIHT7CN9fn4tlZ"
    "6OL5vHPR4c/Svhzhz93Ol1Nwa6C7Ee70WwNWJcRWRmrHOWQWVYO+xI6j8lrZhHmXz4qg0h"
    "IaCB+Amc6UOJaGToX2Yna2hjC0DKKA/f2Yc5GH+0cHOdh/dJDKf14VFoBvi+e34XyaKm8b"
    "15Yxh9aSO1OATDzXqdSesRUrz5dJ2NvIuZuHiaosmCGTxAJZlOCVUMbIJHgq3ONdd6NXgB"
    "TUe8+ZZV6q9HX55vM0W7503WlcKr8PrnopdrZPEjWyDeZV/w+YBq2QbH6K38V8jDHiYIQC"
    "4MRG1tf792ABKb0jlk7Zvs9BBgpG7o/TR4184sjgNWdgyNL2dNbuZeuPqDprX1ydRU1o3s"
    "EZExd3VCffAs4SLxhD7dsdtHQ1VkOaJK1tvGrenEdLIIZTwX3+i/nvc6GuNsG3bIpDzteB"
    "dLgbCYhYUjMlCxrTAgQqDVDkwsgWvImhcbDH74YrR+ia15jjWu4mlYx+Fe+iIErEe3GVGL"
    "PSLNdHXSeW4/eqbBcX+VVAkUfq23S4g4nOdhLUbz7r3qfenu0oXIpbbyzJ5eF12moPu5+Z"
    "hS4bjHD76vKam/PnzN4n8wW36PURbp21eudXPV4KxxDrBJdzwt7lsCffpZqT76LWZHhtFc"
    "GjwpQ1HvXc8SjEuFxmHgTp1jALtmM25Rb4MxGwx5NMCdvEhqY6Z7smTLSJU3e7OGEpb6XU"
    "Aj+ICvYgroF7jgjpER7ck2NUmBO5sAH6wS2sJ/E8dMfybD72Jr0Iu5NIq+weehoA7AF/U+"
    "AxytXot89+bukm4oqpXA9QbG92H0ZZfRhn75kzXyAdjJfhADUz4hEb8xLcWYaN3sv4tonk"
    "IzPrqRvCzmtlrFkAnkdREBMJU21PEJW3sRM4687YkhwOU1eZ0xJ/spgtbcs8Culmc2TJgh"
    "jcGfYskrwxMUxZzxaJgZl/+kSbQMA1zimeAEWVRbLVyR9DiMIMjnP3g8zK+YSWMf8ywlQX"
    "1blxu3lmzL33Zo9X6u/5FrxbYRzBScV+uwwy8fJ2a9BunXcaieplDWwdBLp6oayNbFgh9v"
    "aZxd7vtofJ/FVTTZTSfP7s91gNdm9PcxeWV3j7S5FbOhQdAIZT/akzl/LDpz4yYUqg2hXh"
    "peylOqJ79Eq53yRa35ERpj7SEBtxIwGoj7RQsjB6N16lWoHGD8Lz1xYRQUrIMy3d6NgdpG"
    "5+hQJmxNR53ikmbi00xTSPo/SP6qkgWC/SWNQZpLMaRa+UkaNkoOgBocWYm554EaaqdPbF"
    "x8tWe2/wsdU8OvYi/ya5Q9aexvcEmc+k8DxuyjcF5uaaOxRQaOY168MJMXmymI7Tk5iOYz"
    "lMMqu7UJB5RfGoGPO25NPnGexyg9S5DgJSdRbZHzYaQw7h2EJrlgGyg4R1PKPKcHeueIYU"
    "53hZSGcGiSqtMr/MiLChDfvUPdjipn0SC7QvumUU4+uDPMlqrFWqahR1lUnp8GzqBOswYG"
    "6nm4XzQKN8J5ocy82sCOZayHNBMp+Q/9XqggW0bMyfmbDcInGaJ+X80lq6LWgouqkqrn/E"
    "VR6bZfMFf1jvqZd1dl0feqnkoReLSGOhTA6IR1tpZXwz6PRlyvAIX7f6wx5/dFcjTwhptT"
    "+eyqVYRi9nCcTTyiepOvkkbq1i2z2oGRbIkK2kNHN1RVJlOawlqt/5Y5htk66snIur3m9e"
    "86ihGmZ5SMcVsUlDhLVN+txtUn5OmqiOVez8UZCoyqePPjg2z/q+JTzb1EIasThsVUbjNQ"
    "/evM1z1Ig1Sz9rJCojh1eQDfkuVcRVD9Js31lv/HviYHHICYwdw7QNTPf5a//byFqRo8bO"
    "z/ud09N/KMHjUSNhNYofDIg4gcAmCPmGMFWAyUaPtaUicfoCh1627eSHrdO8oe8QUR1efT"
    "i8GshXf2SIKiVv/pmxO3eUKTTTkmOuT+MTr0KyCU5xMFyb7hUH48MPu8UtwPY1PXz2wCbu"
    "oQSKTsHdjAhf1bWWwcKESxkrnJE7USPsZvCPo0/dWyxCDvImXlDQVTao6ieHC57WoZUqKT"
    "glwzUV/xcwxrz2L8INihpdeeC/Zgb81zyInValpjMtwl+v/Xr4u4mp27jpX+xROGGqRcSo"
    "RIiKaXebqR8F6MbUcHMdKGO9icBsuZgx46qMGXyYSyKHGRI5jEsk+GtigkmHACJkL2L+bx"
    "sGcLcg1Y3iF2F/AmmVRSDCE2FUWm68Cj9vOLYMNHm0Y7FREdEltdFclblLZQQV66DK4qrs"
    "ipF3nJUWRgp5LYpHrIzCF4DECKvM/kYL2zOLLAxNYiDAKHVKcyM7t5zNhfkfIau5X477IS"
    "8vEkkkxEQQp3hiQboI88eMcFPc90zdIPdX5m84dD2ZIAvp3G3mIaycpmpWlPDq6iKkf866"
    "UQVzc3nWYSIQAmCNDDsUSqzvy6tjJ9HYibwrq8xMCFPWM6HKM8HjW2AqrJLJc6YUxeDrR6"
    "bmv2zoOunU7CMZVtnjKNU+0xBlWwZCH+Dsw0B98KBRDsAeA2M+d0QvgGK4oDNiy+wzr8Md"
    "mnCmRxEHj22EoweVEyD7jbwiAbT/KxSs8NjwNYLl14D7NgH3Z3Iwv4TvcqiApgiZiwz54M"
    "zb/sHjXwdprDxeUiOJlRBHjSRWRhS/BpJYMgpbI4fPn9s1ZlVIIs8TqciDWdWXIG0rUbG+"
    "tGRNl5bkyE/8pQC2p7/CZKOgk7j5KAFp8m5ESoeXvKuXHoaUBmSOCEYiE9PLy6ShjE0Kdo"
    "mlCGYCg6riPKsCLAfTwAfaXsWRpLX2/HDWZ40Ubf3WizhfO7w4mbOP+0bPlrIHRe8K4GmD"
    "e1w9YGrw6DA/xU14FNbAMq9QtCgT/d7IZ3r4ai+aKxukqbLv0Dg3KE9OA95gK+FFeJ9vKH"
    "zvS4ywymfGoDUluGnogA/W/UzVhFhg0Lq8KJKNEF0CR7mWwFHGEjhKSAAR20eCsfNA/seK"
    "bIvpH6uSoDBSNuhLNvcp/4ypIc5O+BtjIcNlw5kgz+sQeYN/vEsaSOHlECiPZsyK+79CH6"
    "nlX3PVSfg7tfK7YPyWB6QbbMvglz1AfW7gMgtlzR8H09gGhrBtMHakX2+YahilUD+L25jv"
    "ZgiDkOZVVvYmlxCfge6HhJ8mIlSDUjUoVSdS/TozoU6kKmaJVjs3qIUsQ5s1EoAat0bJgm"
    "qg3+YhsCadDTU8Ui14JNW+SvcM042qSvnjZc+vbsLp44uqAIfd5i+QuxuKS6dcRZV1c2ra"
    "VVSVvDp1HUkYL+NTm/f/B0PcNt8="
)
