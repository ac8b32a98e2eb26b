# The API image: Flask under gunicorn (deploy/gunicorn.conf.py), gthread workers, Prometheus multiprocess mode.
# No TensorFlow: only the core dependencies and the `server` extra (gunicorn) are installed; the webhook worker
# runs from this image too (it loads no model). Build from the repository root:
#   docker build -f deploy/docker/api.Dockerfile -t styleforge-api .
# Settings come from the environment at run time (README "Configuration"); nothing secret is baked in.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/styleforge-api-metrics

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY client ./client
COPY shared ./shared
COPY worker ./worker
RUN pip install "./[server]"
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
# The one-shot bucket set-up (compose's s3-setup service): the lifecycle rule of deploy/s3-lifecycle.json.
COPY deploy/s3_lifecycle.py deploy/s3-lifecycle.json ./deploy/

# A numeric uid, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin styleforge
USER 10001:10001

EXPOSE 8000
# /healthz answers while the process serves; Redis and S3 are /readyz's business (a Redis outage must not
# restart every API container).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
