# One image, each process a command:
#   docker run IMAGE eventstrata serve | eventstrata worker ingest | eventstrata worker archive
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    EVENTSTRATA_API_HOST=0.0.0.0 EVENTSTRATA_STATE_DIR=/var/lib/eventstrata
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --system --uid 10001 eventstrata \
    && mkdir -p /var/lib/eventstrata && chown eventstrata /var/lib/eventstrata
USER eventstrata
EXPOSE 8080 9100
CMD ["eventstrata", "serve"]
