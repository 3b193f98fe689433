# syntax=docker/dockerfile:1
# Leadflow's container image: one image for every process of a deployment.
#   API (the default):  leadflow serve --no-worker --host 0.0.0.0
#   worker:             leadflow worker --alive-file /tmp/leadflow-alive
#   migrations:         leadflow migrate
# It needs LEADFLOW_DATABASE_URL: the embedded PostgreSQL of `leadflow serve` on a laptop
# is not for containers (their disk goes with them), so the image turns it off.
# Build: docker build -t leadflow .      compose.yaml and deploy/kubernetes/ run it.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the project's wheel (its build backend, hatchling) and the wheels of what it
# needs to run. No extras: the dev, ml and bench tools stay out of the image.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed into a clean slim Python, run by a user without rights.
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    LEADFLOW_EMBEDDED_DATABASE=false \
    LEADFLOW_DATA_DIR=/var/lib/leadflow
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels leadflow \
    && groupadd --system --gid 10001 leadflow \
    && useradd --system --uid 10001 --gid leadflow --home-dir /var/lib/leadflow \
        --create-home --shell /usr/sbin/nologin leadflow
WORKDIR /var/lib/leadflow
# Numeric, so that Kubernetes' runAsNonRoot can tell it is not root.
USER 10001:10001
EXPOSE 8000
# The slim image has no curl: Python's urllib asks /healthz (any non-2xx or no answer fails).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["leadflow"]
CMD ["serve", "--no-worker", "--host", "0.0.0.0"]
