# Two images from one file:
#   docker build --target receiver -t ml-incident-runbooks:receiver .       the receiver, no ML stack
#   docker build --target model-server -t ml-incident-runbooks:local .      + numpy, scikit-learn, joblib,
#                                                                          mlflow (demo model server, traffic
#                                                                          generator, chat sink, mlflow server)
# The receiver image installs only what the receiver imports (`pip install '.[postgres]'`: psycopg for a
# shared PostgreSQL store): it acts on the SQLite registry file or on an MLflow Model Registry over REST,
# and needs neither numpy nor mlflow for either.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /data /registry /secrets /mlflow && chown app:app /data /registry /secrets /mlflow
WORKDIR /app
COPY pyproject.toml README.md ./
COPY receiver ./receiver
COPY model_registry ./model_registry
COPY model_server ./model_server
COPY incident_common ./incident_common

FROM base AS receiver
RUN pip install '.[postgres]' && python -c "import receiver.app, receiver.response_runtime, psycopg_pool"
COPY runbooks ./runbooks
COPY alert_rules ./alert_rules
USER app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
CMD ["receiver", "serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]

# The last stage is what a plain `docker build .` (and docker compose's `build: .`) produces.
FROM base AS model-server
RUN pip install '.[model-server,mlflow,postgres]'
COPY runbooks ./runbooks
COPY alert_rules ./alert_rules
USER app
EXPOSE 8000 8080 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=10 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["model-server", "serve", "--registry-db", "/registry/registry.db", "--model", "demo", \
     "--host", "0.0.0.0", "--port", "8000"]
