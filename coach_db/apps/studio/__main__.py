"""`python -m admin [--host H] [--port P]`: serve the studio (default http://127.0.0.1:5555).

The studio has no sign-up page: `coach-db createstaff EMAIL` makes the first staff member.
`coach-db studio` does more: embedded servers when no URLs are set, migrations, seed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from coach_db import CoachDbError
from coach_db.apps.studio import studio_not_installed
from coach_db.apps.studio.config import get_studio_settings


def main(argv: list[str] | None = None) -> int:
    settings = get_studio_settings()
    parser = argparse.ArgumentParser(prog="python -m admin", description=__doc__)
    parser.add_argument("--host", default=settings.studio_host, help="default: STUDIO_HOST")
    parser.add_argument(
        "--port", type=int, default=settings.studio_port, help="default: STUDIO_PORT"
    )
    args = parser.parse_args(argv)
    settings = settings.model_copy(update={"studio_host": args.host, "studio_port": args.port})
    try:
        from coach_db.apps.studio.app import serve
        from coach_db.apps.studio.assets import AssetsMissing
    except ModuleNotFoundError as missing:  # without the `studio` extra: one line, as the CLI
        print(f"studio: {studio_not_installed(missing.name or 'module')}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(settings))
    except (CoachDbError, AssetsMissing) as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
