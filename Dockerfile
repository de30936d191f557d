# The exporter image: `docker build -t pipeline-exporter .` (docker-compose.yml builds it too).
# Two stages so the final image has the installed package but no build tooling or sources.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md* ./
COPY pipeline_exporter ./pipeline_exporter
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# With the drivers: the same image reads SQLite, PostgreSQL (psycopg 3) and MySQL/MariaDB (PyMySQL).
RUN pip install "$(ls /wheels/pipeline_exporter-*.whl)[postgresql,mysql]" && rm -rf /wheels
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
