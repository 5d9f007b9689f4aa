# The coach-db image: the `coach-db` CLI, migrations, seed and studio, installed with uv.
FROM python:3.11-slim

# uv pinned; the lock is resolved here with pyproject's exclude-newer, so it is the same
# resolution as every developer's (uv.lock is not committed: it records download URLs).
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    COACH_DB_HOME=/app/.coach-db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY coach_db ./coach_db
RUN uv lock && uv sync --locked --no-dev --extra studio --no-install-project
COPY . .
# The studio's CSS/JS are built into COACH_DB_HOME/cache, which the `coach` user owns below.
RUN uv sync --locked --no-dev --extra studio \
    && python -m admin.assets

# Never root at run time.
RUN useradd --system --home /app coach && chown -R coach /app
USER coach
EXPOSE 5555
CMD ["coach-db", "studio", "--host", "0.0.0.0", "--port", "5555", "--no-migrate"]
