"""`python -m seed` in a checkout: `python -m coach_db.apps.seed` (or `coach-db seed`)."""

import sys

from coach_db.apps.seed.cli import main

sys.exit(main())
