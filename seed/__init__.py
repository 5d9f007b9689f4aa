"""`python -m seed` in a checkout: the development data, whose code is coach_db/apps/seed/."""
