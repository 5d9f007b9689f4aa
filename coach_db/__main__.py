"""`python -m coach_db`: the same as the `coach-db` command."""

from coach_db.tools.cli import main

main()
