"""`python -m admin [--host H] [--port P]`: serve the studio (default http://127.0.0.1:5555).

`python -m admin --make-staff EMAIL` makes (or promotes) a staff user, asking for a password:
the studio has no open sign-up page, so this is how the first staff member gets in.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from admin.app import serve
from admin.assets import AssetsMissing
from admin.config import get_studio_settings
from coach_db import CoachDbError, User, connect
from coach_db.passwords import hash_password


async def make_staff(email: str, password: str, database_url: str | None) -> str:
    """Create the user as staff, or give an existing one staff rights and this password."""
    async with connect(database_url):
        user = await User.get_or_none(email=email.strip().lower())
        if user is None:
            name = email.split("@")[0]
            await User.create(
                email=email, username=name, is_staff=True, password_hash=hash_password(password)
            )
            return f"Created staff user {email}."
        user.is_staff = True
        user.password_hash = hash_password(password)
        await user.save(update_fields=["is_staff", "password_hash"])
        return f"{email} is staff now, with the new password."


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
        asyncio.run(serve(settings))
    except (CoachDbError, AssetsMissing) as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
