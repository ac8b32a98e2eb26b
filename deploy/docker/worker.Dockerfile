# The GPU worker image, in two variants (build targets) from one file. Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile --target gpu -t styleforge-worker:gpu .
#   docker build -f deploy/docker/worker.Dockerfile --target cpu -t styleforge-worker:cpu .
#
# The GPU variant is python slim plus TensorFlow's `and-cuda` wheels (the `gpu` extra), not an nvidia/cuda base
# image: since TF 2.16 the CUDA and cuDNN libraries TF was built against come as NVIDIA's own PyPI wheels, pinned
# by TF itself, so the versions always match. A CUDA base image would add a second, possibly mismatched CUDA of
# several GB. The host needs only the NVIDIA driver and the NVIDIA container toolkit, which mounts the driver's
# libraries into the container at run time.
#
# One worker process per container (per GPU), Celery's threads pool at concurrency 1 (worker/cli.py). Settings
# come from the environment at run time; nothing secret is baked in.
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/home/styleforge \
    STYLEFORGE_METRICS_PORT=9101

# A numeric uid, so Kubernetes' runAsNonRoot can check it. Its home holds Keras's cache (~/.keras/models):
# mount pre-fetched ImageNet weights there, or point STYLEFORGE_VGG_WEIGHTS at a mounted .h5 file.
# The cache folder exists, owned by the user, so a volume mounted there starts writable.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/styleforge --shell /usr/sbin/nologin styleforge \
    && mkdir -p /home/styleforge/.keras/models \
    && chown -R 10001:10001 /home/styleforge/.keras

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY client ./client
COPY shared ./shared
COPY worker ./worker
# The precision probe's two images (worker/precision.py reads them beside the package, hence the editable
# installs below; without them it probes on noise).
COPY examples/LICENSES.md ./examples/LICENSES.md
COPY examples/content/chelsea.png ./examples/content/chelsea.png
COPY examples/style/hubble_deep_field.jpg ./examples/style/hubble_deep_field.jpg

FROM base AS cpu
RUN pip install -e "./[worker,hed]"
USER 10001:10001
EXPOSE 9101
# Liveness by Celery's own remote control: the threads pool answers `inspect ping` from the main thread while a
# job runs on the pool's thread, so a busy worker stays healthy. Its node name is Celery's default,
# celery@<hostname>, because `styleforge worker` is started without --hostname. The start period covers
# loading VGG19 and the precision probe.
HEALTHCHECK --interval=60s --timeout=30s --start-period=300s --retries=3 \
    CMD ["sh", "-c", "celery -A worker.celery_app inspect ping -d \"celery@$HOSTNAME\" --timeout 20 > /dev/null"]
CMD ["styleforge", "worker"]

FROM base AS gpu
RUN pip install -e "./[gpu,hed]"
USER 10001:10001
EXPOSE 9101
HEALTHCHECK --interval=60s --timeout=30s --start-period=300s --retries=3 \
    CMD ["sh", "-c", "celery -A worker.celery_app inspect ping -d \"celery@$HOSTNAME\" --timeout 20 > /dev/null"]
CMD ["styleforge", "worker"]
