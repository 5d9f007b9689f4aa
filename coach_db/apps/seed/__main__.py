"""`python -m seed`: load the development data (options in coach_db/apps/seed/cli.py, or --help)."""

import sys

from coach_db.apps.seed.cli import main

sys.exit(main())
