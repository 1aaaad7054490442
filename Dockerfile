# feedsvc production image: `docker build -t feedsvc .`
#
#   docker run -p 8080:8080 -v "$PWD/content:/data/content:ro" -v feedsvc-var:/data/var \
#     -e FEEDSVC_SITE_BASE_URL=https://news.example.com feedsvc
#
# Every setting comes from FEEDSVC_<SECTION>_<KEY> (README, "Configuration"). The default
# command is `feedsvc serve`: granian workers plus one watcher. For several web
# instances on PostgreSQL, run `feedsvc serve --no-watch` N times and `feedsvc watch`
# once (deploy/compose.yaml). tests/test_deploy.py replays this file's ENV, WORKDIR, COPY,
# RUN, CMD and HEALTHCHECK lines in a fresh virtual environment, so keep them plain.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY feedsvc ./feedsvc
RUN python -m venv /opt/feedsvc && /opt/feedsvc/bin/pip install /src

RUN useradd --system --uid 10001 --user-group --home-dir /data feedsvc && mkdir -p /data/content /data/var && chown -R feedsvc:feedsvc /data

ENV PATH=/opt/feedsvc/bin:$PATH \
    FEEDSVC_CONTENT_PATH=/data/content \
    FEEDSVC_STORE_URL=sqlite:////data/var/feedsvc.sqlite3 \
    FEEDSVC_SERVER_HOST=0.0.0.0 \
    FEEDSVC_SERVER_PORT=8080

WORKDIR /data
VOLUME ["/data/var"]
USER feedsvc
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FEEDSVC_SERVER_PORT', '8080'), timeout=4)"]

CMD ["feedsvc", "serve"]
