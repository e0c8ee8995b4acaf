# Crypto Price Server image.
#   docker build -t crypto-price-server .
#   serve:    docker run -p 8000:8000 -e DATABASE_URL=... -e REDIS_URL=... -e JWT_SECRET=... crypto-price-server
#   migrate:  docker run --rm -e DATABASE_URL=... crypto-price-server aerich -c aerich.ini upgrade
# The image always expects DATABASE_URL: the embedded PostgreSQL (the `embedded` extra) is for
# `make run` only, and the server refuses to start without it. Dependencies come from
# requirements.lock (`make lock`), every file checked against its hash.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv holding the project and its locked runtime dependencies ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# No pip in the venv the image keeps: the base image's pip installs into it (--python).
RUN python -m venv --without-pip /opt/venv

WORKDIR /src

# The dependencies first, so that a code change reuses this layer. --no-deps: the lock is the
# whole closure already, less setuptools, which sanic declares but never imports.
# Every one of them ships binary wheels for linux amd64 and arm64: no compiler is needed.
COPY requirements.lock requirements-build.lock ./
RUN pip --python /opt/venv/bin/python install --require-hashes --no-deps -r requirements.lock \
    && python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes -r requirements-build.lock

# Then the project itself, as a wheel built by the locked setuptools of /opt/build (which stays
# in this stage), installed non-editable, without the dev or embedded extras.
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY application ./application
COPY infrastructure ./infrastructure
COPY interfaces ./interfaces
COPY bootstrap.py ./
# Smoke test of the installed copy (-P: not the source tree in the working directory).
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
    && pip --python /opt/venv/bin/python install --no-deps /tmp/dist/*.whl \
    && /opt/venv/bin/python -P -c "import interfaces.http.app, infrastructure.db.config"

# ---- runtime ----
FROM ${PYTHON_IMAGE} AS runtime

# No pip, setuptools or wheel here, whether the base image has them from pip (the official
# images) or from the distribution's packages; the build fails if any is left.
RUN if dpkg-query -W python3-pip >/dev/null 2>&1; then \
        apt-get purge -y -q --auto-remove python3-pip python3-setuptools python3-wheel >/dev/null; \
    else \
        python -m pip uninstall -y -q pip setuptools wheel; \
    fi \
    && ! python -c "import pip" 2>/dev/null \
    && ! python -c "import setuptools" 2>/dev/null \
    && ! command -v pip

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
