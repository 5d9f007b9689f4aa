"""`python -m admin [--host H] [--port P]` in a checkout: `python -m coach_db.apps.studio`."""

import sys

from coach_db.apps.studio.__main__ import main

sys.exit(main())
