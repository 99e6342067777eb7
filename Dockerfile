# One image for every role; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
# `--build-arg LOCK=embeddings` adds the bundled embedding model (kb_embeddings = "bundled").
ARG LOCK=run
COPY requirements/${LOCK}.txt ./requirements/
# The locked tree first (its own layer, cached while the lock is unchanged), then the project alone.
RUN pip install -r requirements/${LOCK}.txt
COPY supportbridge ./supportbridge
COPY bridge ./bridge
COPY bots ./bots
COPY emulators ./emulators
COPY kb ./kb
COPY bench ./bench
COPY config ./config
RUN pip install --no-deps --no-build-isolation . && useradd --system --home /app supportbridge && chown -R supportbridge /app
USER supportbridge

# Settings come from SB_* variables; the annotated file documents them.
ENV SB_CONFIG=/app/config/supportbridge.toml SB_HTTP_HOST=0.0.0.0 SB_HTTP_PORT=8080 \
    SB_LOG_FORMAT=json SB_DATA_DIR=/app/data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["supportbridge", "web"]
