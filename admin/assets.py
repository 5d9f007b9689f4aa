"""`python -m admin.assets [--check]` in a checkout: build the studio's CSS/JS from this folder's
package-lock.json (coach_db/apps/studio/assets.py)."""

import sys

from coach_db.apps.studio.assets import main

if __name__ == "__main__":
    sys.exit(main())
