# syntax=docker/dockerfile:1
# Sentinel API service: the public gRPC API (TestExecution, QueueAdmin, health, reflection).
# Build from the repository root:  docker build -f deploy/api.Dockerfile -t sentinel-api .
# Configuration comes from the environment (REDIS_URL, API_GRPC_PORT, ...; see README).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
# A venv in the build stage, copied whole into the runtime stage: no sources or build leftovers ship.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    API_GRPC_PORT=50051 \
    API_HTTP_PORT=8080
# The compose volume for artifacts mounts here; Docker gives a new volume this directory's owner.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/sentinel sentinel \
    && install -d -o 10001 -g 10001 /var/lib/sentinel/artifacts
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/sentinel
EXPOSE 50051 8080 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-m", "sentinel_cli.healthcheck", "localhost:50051"]
CMD ["sentinel", "api"]
