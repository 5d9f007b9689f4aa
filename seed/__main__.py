"""`python -m seed`: load the development data (options in seed/cli.py, or --help)."""

import sys

from seed.cli import main

sys.exit(main())
