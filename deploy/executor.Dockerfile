# syntax=docker/dockerfile:1
# Sentinel executor service: claims jobs from Redis Streams and runs them in Chromium (Playwright,
# driving Debian's chromium package rather than a Playwright-downloaded browser).
# Build from the repository root:  docker build -f deploy/executor.Dockerfile -t sentinel-executor .
# Give the container a larger /dev/shm (compose: shm_size) so Chromium does not crash on big pages.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm
# fonts-liberation: without any fonts, text renders as boxes in screenshots. ca-certificates: the
# trust store API checks verify HTTPS against (named though the base image has it: it must stay).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates chromium fonts-liberation ffmpeg \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EXECUTOR_GRPC_PORT=50052 \
    SENTINEL_CHROMIUM=/usr/bin/chromium
# The compose volume for artifacts mounts here; Docker gives a new volume this directory's owner.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/sentinel sentinel \
    && install -d -o 10001 -g 10001 /var/lib/sentinel/artifacts
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
# Chromium keeps its profile and crash files under $HOME.
WORKDIR /home/sentinel
EXPOSE 50052 9465
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "sentinel_cli.healthcheck", "localhost:50052"]
CMD ["sentinel", "executor"]
