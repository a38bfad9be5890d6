# syntax=docker/dockerfile:1
#
# iot-poison-monitor: the service image. The entrypoint is the CLI, so the command picks the
# subcommand: `run` (the default: consume Kafka, serve /metrics, /healthz, /readyz on 9108),
# `simulate` (the fake fleet, producing to Kafka), `options` (print the effective settings), ...
#
#   docker build -t iot-poison-monitor:0.1.0 .
#   docker run --rm -e POISON_MONITOR_KAFKA__BOOTSTRAP_SERVERS=broker:9092 -p 9108:9108 iot-poison-monitor:0.1.0
#
# Settings come from --config FILE, POISON_MONITOR_* variables and flags (docs/deploy.md).
# Two stages: the first installs the package and its dependencies (wheels only: numpy, scipy and
# river ship manylinux wheels for CPython 3.11) into a virtual environment; the second copies that
# environment alone, without pip's cache, the sources or the build backend.

FROM python:3.11.13-slim-bookworm AS build

RUN python -m venv /opt/venv
WORKDIR /src
# What `pip install .` needs: the project metadata (with its readme) and the two packages.
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY simulators ./simulators
# Runtime dependencies only (no [dev] extras); the cache mount keeps downloads out of the layers.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --disable-pip-version-check . \
    && /opt/venv/bin/poison-monitor options >/dev/null


FROM python:3.11.13-slim-bookworm

LABEL org.opencontainers.image.title="iot-poison-monitor" \
      org.opencontainers.image.description="Finds lying and colluding IoT sensors in a Kafka stream"

# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can verify it (deploy/kubernetes uses 10001).
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/monitor --create-home \
       --shell /usr/sbin/nologin monitor

COPY --from=build /opt/venv /opt/venv

# metrics.host 0.0.0.0: /metrics and the probes must be reachable from outside the container
# (the settings default, 127.0.0.1, is for a process on a workstation).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    POISON_MONITOR_METRICS__HOST=0.0.0.0

WORKDIR /home/monitor
USER 10001:10001

# metrics.port (the settings default)
EXPOSE 9108

# /healthz answers 200 while the service loop turns (and while it is still connecting to Kafka).
# No curl in slim images: Python's urllib. An HTTP error or a refused connection raises: exit 1.
# The port follows POISON_MONITOR_METRICS__PORT when that is how it was changed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('POISON_MONITOR_METRICS__PORT', '9108') + '/healthz', timeout=4)"]

ENTRYPOINT ["poison-monitor"]
CMD ["run"]
