# Taskpipe: one image for the API, the Celery worker and beat, Flower and the migrations.
# The command differs per process (see docker-compose.yml and k8s/); the default runs the API.
#
# Build (BuildKit, the default builder since Docker 23, is needed for the cache mount):
#   docker build -t taskpipe:dev .
# `make compose-smoke` builds it, runs the compose stack and drives a smoke scenario through it.

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

# The dependencies alone: this layer (and the runtime's copy of it) changes only with uv.lock.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-install-project --no-editable

# ---------------------------------------------------------------------------------------------
# runtime: the dependencies' venv, then the code; no compiler, no pip/uv, no tests or dev tools
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="taskpipe" \
      org.opencontainers.image.description="Taskpipe API, Celery worker/beat, Flower and migrations"

# TASKPIPE_ENV=production: a container that forgets to configure itself refuses the development
# secrets instead of running with them (compose sets development explicitly).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PYTHONPATH=/app \
    VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    TASKPIPE_ENV=production \
    WEB_CONCURRENCY=1 \
    FORWARDED_ALLOW_IPS="127.0.0.1"

RUN groupadd --system --gid 10001 taskpipe \
    && useradd --system --uid 10001 --gid taskpipe --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin taskpipe

WORKDIR /app

# Layers from the least to the most often changed, so a code change ships a few hundred kB and
# the dependency layer stays cached (locally and in the registry). Everything is owned by root
# and read-only for the process user: the app never writes into its own code.
COPY --from=builder /app/.venv /app/.venv
COPY alembic.ini ./
COPY migrations ./migrations
COPY common ./common
COPY worker ./worker
COPY api ./api
# Bytecode now: at run time the root filesystem is read-only and nothing may be written.
RUN python -m compileall -q -j 0 common worker api migrations

USER 10001:10001

EXPOSE 8000 5555

# The API's liveness route. Worker, beat and Flower containers override this check in
# docker-compose.yml (Kubernetes ignores HEALTHCHECK and uses the probes in k8s/).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

STOPSIGNAL SIGTERM

# Exec form, no shell and no init: the server is PID 1 and gets SIGTERM itself (uvicorn's
# supervisor passes it on to its worker processes). It stops accepting connections, lets
# in-flight requests finish for up to 25 s, then exits 0. Processes: $WEB_CONCURRENCY (1 here;
# more than 1 also needs PROMETHEUS_MULTIPROC_DIR). Proxy headers are trusted from
# $FORWARDED_ALLOW_IPS only. Operators' commands: `python -m worker.cli queues|check|jobs ...`.
CMD ["python", "-m", "api.server", "--host", "0.0.0.0", "--port", "8000"]
