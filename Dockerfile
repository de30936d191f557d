# The exporter image: `docker build -t pipeline-exporter .` (docker-compose.yml builds it too).
# Two stages so the final image has the installed package but no build tooling or sources.
#
# Reproducible builds pin two things:
# - the Python dependencies: requirements.lock (written by `make lock` from a resolved install,
#   committed) constrains every package pip installs here to the version tested;
# - the base image, by digest, through PYTHON_IMAGE. A tag moves; a digest does not. Resolve the
#   digest of the tag yourself (this repository cannot: it has no registry to ask) and pass it:
#     docker pull python:3.11-slim
#     docker inspect --format '{{index .RepoDigests 0}}' python:3.11-slim    # python@sha256:...
#     docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<that digest> \
#         --build-arg VERSION=$(python3 -c 'import pipeline_exporter; print(pipeline_exporter.__version__)') \
#         --build-arg REVISION=$(git rev-parse HEAD) \
#         --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t pipeline-exporter .
#   Without it the tag is used as it stands that day (docker compose does so).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md* LICENSE ./
COPY pipeline_exporter ./pipeline_exporter
# build_info's revision: .git is not in the build context, so the build argument is written into the
# package (pipeline_exporter/revision.py reads it); without it the image reports revision="unknown".
ARG REVISION=unknown
RUN if [ "$REVISION" != unknown ]; then printf '%s\n' "$REVISION" > pipeline_exporter/REVISION; fi \
    && pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
# OCI labels. No source or url label: no project URL is published yet, and none is guessed.
LABEL org.opencontainers.image.title="pipeline-exporter" \
      org.opencontainers.image.description="Prometheus exporter for a pipeline's SQL database (SQLite, PostgreSQL, MySQL/MariaDB), read-only" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
COPY requirements.lock /tmp/requirements.lock
# With the drivers: the same image reads SQLite, PostgreSQL (psycopg 3) and MySQL/MariaDB (PyMySQL),
# each at the version requirements.lock pins (tests/unit/test_packaging.py checks that it pins them all).
RUN pip install --constraint /tmp/requirements.lock "$(ls /wheels/pipeline_exporter-*.whl)[postgresql,mysql]" \
    && pip check && rm -rf /wheels /tmp/requirements.lock
# A fixed non-root uid; /data is owned by it so a named volume mounted there (docker-compose's
# demo-data) starts out writable for demo-init. The exporter itself only reads.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin exporter \
    && mkdir -p /data/db \
    && chown -R exporter:exporter /data
USER 10001:10001
WORKDIR /data
EXPOSE 9333
# The running exporter (PID 1) is asked with its own flags and environment, so the check follows
# --web.listen-address, the telemetry path and the web config's TLS (pipeline_exporter/probe.py).
# /-/healthy needs no password under basic auth. Kubernetes ignores HEALTHCHECK and uses the probes
# of deploy/kubernetes instead; with client certificates required, disable it (--no-healthcheck).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "pipeline_exporter.probe", "/-/healthy"]
ENTRYPOINT ["pipeline-exporter"]
# Every flag can also come from the environment: PIPELINE_EXPORTER_DATABASE_URL, ...
CMD ["--database.url", "sqlite:////data/db/sites.db", "--web.listen-address", ":9333"]
