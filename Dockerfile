# syntax=docker/dockerfile:1
# goto-classifier service image: multi-stage, slim, non-root, health-checked on /readyz.

# ---- build: resolve and install dependencies into a venv (cached unless pyproject.toml changes) ----
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first: only pyproject.toml, with empty packages, so source edits do not bust this layer.
COPY pyproject.toml README.md ./
RUN mkdir lightcurve trainer service \
    && touch lightcurve/__init__.py trainer/__init__.py service/__init__.py \
    && pip install . \
    && pip uninstall -y goto-classifier
COPY lightcurve ./lightcurve
COPY trainer ./trainer
COPY service ./service
RUN pip install --no-deps .

# ---- runtime: the venv, the shipped model, an unprivileged user ----
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    GOTO_MODEL_DIR=/app/model_artifacts \
    GOTO_DATA_DIR=/data \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --system --gid 10001 goto && useradd --system --uid 10001 --gid goto --home-dir /app --shell /usr/sbin/nologin goto \
    && mkdir -p /app /data /tmp/prometheus && chown goto:goto /data /tmp/prometheus
COPY --from=build /opt/venv /opt/venv
# Baked in; mount another model directory over /app/model_artifacts to serve a different model.
COPY model_artifacts /app/model_artifacts
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["goto-classifier"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
