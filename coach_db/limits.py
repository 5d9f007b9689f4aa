"""Documented size limits of conversations, shared by the package, the studio and the database.

Each limit is enforced twice: here, first, so the error names the problem, and by a CHECK
constraint in PostgreSQL (migration ``3_…``), so raw SQL and other services cannot go past it.
"""

from typing import Final

#: The longest message content, in characters (a long LLM reply is ~10,000).
MAX_CONTENT_CHARS: Final = 32_000
#: The largest message metadata, in bytes of its compact JSON text (UTF-8).
MAX_METADATA_BYTES: Final = 32_768
#: The deepest nesting of message metadata (an object holding an object is depth 2).
MAX_METADATA_DEPTH: Final = 16
#: The most messages one call of ``transcript()`` returns, and one studio transcript page shows.
MAX_TRANSCRIPT_PAGE: Final = 500
#: The most sessions one call of ``user_history()`` returns (newest first; ``before`` for more).
MAX_HISTORY_SESSIONS: Final = 50
#: The most messages per session that ``user_history()`` includes (the first ones, in order).
MAX_HISTORY_MESSAGES: Final = 200
#: The longest idempotency key of ``add_message`` / ``start_session``, in characters (Stripe's).
MAX_IDEMPOTENCY_KEY_CHARS: Final = 255
