"""The apps on top of the tools: the studio and the development seed. Each adds its commands to
`coach-db` through the `coach_db.commands` entry points (pyproject.toml)."""
