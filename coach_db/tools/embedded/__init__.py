"""PostgreSQL and Redis from PyPI wheels, which `coach-db studio` starts when no server is set."""

from coach_db.tools.embedded.servers import EmbeddedServers

__all__ = ["EmbeddedServers"]
