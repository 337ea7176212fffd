# Taskpipe: one image for the API, the Celery worker and beat, Flower and the migrations.
# The command differs per process (see docker-compose.yml and k8s/); the default runs the API.
#
# Build (BuildKit, the default builder since Docker 23, is needed for the cache mounts):
#   docker build -t taskpipe:dev .
# No Docker engine runs on the development machines of this project: tests/deploy/ checks this file
# by reading it (stages, user, healthcheck, entry points), not by building it.

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------------------
# builder: resolves nothing, installs exactly what uv.lock pins (no dev/embedded/loadtest groups)
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder

ARG PYTHON_VERSION
ARG UV_VERSION=0.13.9

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python${PYTHON_VERSION} \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-install-project --no-editable

# Then the project itself, installed non-editable into the venv (console script `taskpipe`).
COPY README.md ./
COPY api ./api
COPY common ./common
COPY worker ./worker
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-editable

# ---------------------------------------------------------------------------------------------
# runtime: the venv, the migrations, a non-root user; no compiler, no pip/uv cache, no sources
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="taskpipe" \
      org.opencontainers.image.description="Taskpipe API, Celery worker/beat, Flower and migrations"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    WEB_CONCURRENCY=1 \
    FORWARDED_ALLOW_IPS="127.0.0.1"

RUN groupadd --system --gid 10001 taskpipe \
    && useradd --system --uid 10001 --gid taskpipe --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin taskpipe

WORKDIR /app

# Owned by root and read-only for the process user: the app never writes into its own code.
COPY --from=builder /app/.venv /app/.venv
COPY alembic.ini ./
COPY migrations ./migrations

USER 10001:10001

EXPOSE 8000 5555

# The API's liveness route. Worker, beat and Flower containers override this check in
# docker-compose.yml (Kubernetes ignores HEALTHCHECK and uses the probes in k8s/).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

STOPSIGNAL SIGTERM

# Exec form: uvicorn is PID 1 and receives SIGTERM itself. It stops accepting connections, lets
# in-flight requests finish for up to 25 s, then exits. Worker processes: $WEB_CONCURRENCY
# (uvicorn's own default source; 1 here, scale with containers/pods; more than 1 also needs
# PROMETHEUS_MULTIPROC_DIR so that /metrics covers every process). Proxy headers are trusted from
# $FORWARDED_ALLOW_IPS.
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--loop", "uvloop", "--http", "httptools", "--proxy-headers", "--timeout-graceful-shutdown", "25", "--no-access-log"]
