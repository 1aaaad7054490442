# feedsvc production image: `docker build -t feedsvc .`
#
#   docker run -p 8080:8080 -v "$PWD/content:/data/content:ro" -v feedsvc-var:/data/var \
#     -e FEEDSVC_SITE_BASE_URL=https://news.example.com feedsvc
#
# Every setting comes from FEEDSVC_<SECTION>_<KEY> (README, "Configuration"). The default
# command is `feedsvc serve`: granian workers plus one watcher. For several web
# instances on PostgreSQL, run `feedsvc serve --no-watch` N times and `feedsvc watch`
# once (deploy/compose.yaml). docs/deployment.md, "Container image", says more.
#
# BASE: any Debian-like image whose `python` is CPython 3.11 with `venv`, and which has
# `useradd`. tests/test_image.py builds this file with buildah from a Debian base it
# makes with debootstrap, and runs the result.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The dependencies alone, from the lock file, every file checked against its hash: this
# layer is rebuilt only when the lock changes. requirements/main.lock pins
# feedsvc[postgresql], the PostgreSQL extra (psycopg) included, so one image serves
# both stores.
COPY requirements/main.lock /src/requirements/main.lock
RUN python -m venv /opt/feedsvc \
    && /opt/feedsvc/bin/pip install --require-hashes --no-deps -r /src/requirements/main.lock

# feedsvc itself, with nothing more: `pip check` fails the build if the lock lacks
# something feedsvc needs.
COPY pyproject.toml README.md /src/
COPY feedsvc /src/feedsvc
RUN /opt/feedsvc/bin/pip install --no-deps /src \
    && /opt/feedsvc/bin/pip check \
    && rm -rf /src

# A user of its own without a shell (uid and gid 10001). The content stays root's
# (mount it read-only); the store volume is the user's.
RUN groupadd --gid 10001 feedsvc \
    && useradd --uid 10001 --gid feedsvc --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin feedsvc \
    && mkdir -p /data/content /data/var \
    && chown feedsvc:feedsvc /data/var

ENV PATH=/opt/feedsvc/bin:$PATH \
    FEEDSVC_CONTENT_PATH=/data/content \
    FEEDSVC_STORE_URL=sqlite:////data/var/feedsvc.sqlite3 \
    FEEDSVC_SERVER_HOST=0.0.0.0 \
    FEEDSVC_SERVER_PORT=8080

WORKDIR /data
VOLUME ["/data/var"]
# Numeric, so a runtime that refuses root (Kubernetes' runAsNonRoot) can tell.
USER 10001:10001
EXPOSE 8080

# Set the port by FEEDSVC_SERVER_PORT, not --port, so that this check follows it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FEEDSVC_SERVER_PORT', '8080'), timeout=4)"]

CMD ["feedsvc", "serve"]
