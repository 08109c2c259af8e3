# One image for the Python services of the stack: the receiver, the demo model server and the traffic generator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY receiver ./receiver
COPY model_registry ./model_registry
COPY model_server ./model_server
RUN pip install .
COPY runbooks ./runbooks
COPY alert_rules ./alert_rules
RUN mkdir -p /data /registry /secrets && chown app:app /data /registry /secrets
USER app
EXPOSE 8080 8000
CMD ["receiver", "serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
