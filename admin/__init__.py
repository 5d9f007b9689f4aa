"""`python -m admin` in a checkout: the studio, whose code is coach_db/apps/studio/.

This folder keeps the npm files its CSS/JS are built from (package.json, package-lock.json);
it is not shipped in the wheel.
"""
