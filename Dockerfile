# syntax=docker/dockerfile:1
#
# Crypto Price Server image.
#   docker build -t crypto-price-server .
#   serve:    docker run -p 8000:8000 -e DATABASE_URL=... -e REDIS_URL=... -e JWT_SECRET=... crypto-price-server
#   migrate:  docker run --rm -e DATABASE_URL=... crypto-price-server aerich -c aerich.ini upgrade
# The image always expects DATABASE_URL: the embedded PostgreSQL is for `make run` only.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv holding the project and its runtime dependencies ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# The dependencies first, read from pyproject.toml, so that a code change reuses this layer.
# Every one of them ships binary wheels for linux amd64 and arm64: no compiler is needed.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install; no dev dependencies).
COPY domain ./domain
COPY application ./application
COPY infrastructure ./infrastructure
COPY interfaces ./interfaces
COPY bootstrap.py ./
# Smoke test of the installed copy (-P: not the source tree in the working directory).
RUN pip install --no-deps . \
    && python -P -c "import interfaces.http.app, infrastructure.db.config"

# ---- runtime ----
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AERICH_NO_TORTOISE_V1_WARNING=1 \
    DATA_DIR=/app/data \
    PORT=8000 \
    LOG_FORMAT=json

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# aerich runs from /app: it reads aerich.ini and the migration files by path.
COPY aerich.ini ./
COPY infrastructure/db/migrations ./infrastructure/db/migrations
# DATA_DIR only matters when JWT_SECRET is unset (a generated secret is kept there);
# in Kubernetes an emptyDir is mounted here so the root filesystem can stay read-only.
RUN mkdir -p /app/data && chown app:app /app/data

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 8000

# Liveness only (the process answers); readiness (PostgreSQL answers) is /health/ready.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health\", timeout=4).status == 200 else 1)"]

# One process (more cores: more containers, README "Using more cores"). exec: sanic
# becomes PID 1 and receives SIGTERM for a graceful shutdown.
CMD ["sh", "-c", "exec sanic interfaces.http.app:create_app --factory --single-process --host 0.0.0.0 --port \"$PORT\" --no-motd"]
