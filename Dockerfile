# Frugal in a container: the wheel, installed in a virtualenv, run as a non-root user.
#   docker build -t frugal .                          (base: the usual python:3.11-slim)
#   docker build --build-arg BASE_IMAGE=frugal-base .  (any image with python3 and its venv module)
# Settings come from the environment (see .env.example); the image holds no secret and no .env.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN python3 -m venv /tmp/build-env \
 && /tmp/build-env/bin/pip install --no-cache-dir --quiet --upgrade pip \
 && /tmp/build-env/bin/pip wheel --no-cache-dir --quiet --no-deps --wheel-dir /dist .

FROM ${BASE_IMAGE}
COPY --from=wheel /dist/ /tmp/dist/
RUN python3 -m venv /opt/frugal \
 && /opt/frugal/bin/pip install --no-cache-dir --quiet --upgrade pip \
 && /opt/frugal/bin/pip install --no-cache-dir --quiet /tmp/dist/frugal-*.whl \
 && rm -rf /tmp/dist \
 && useradd --system --uid 10001 --user-group --home-dir /home/frugal --create-home frugal
ENV PATH=/opt/frugal/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PORT=3000
USER frugal
WORKDIR /home/frugal
EXPOSE 3000
# 200 once the database answers; 503 while it does not or while the process is stopping.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
# `frugal run` applies pending migrations under a lock first, so replicas may start together.
CMD ["frugal", "run"]
