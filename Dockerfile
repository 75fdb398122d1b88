# syntax=docker/dockerfile:1
# syncbot's production image: `syncbot serve` by default; the worker and the fixer run the same image with
# `syncbot worker` (see Procfile and deploy/kubernetes/). Only the production install (README: "pip install
# ."): no sandbox, test or bench extras, so the image carries none of the fakes.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY syncbot ./syncbot
RUN python -m venv /opt/syncbot && /opt/syncbot/bin/pip install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /home/syncbot --create-home syncbot
COPY --from=build /opt/syncbot /opt/syncbot
# `syncbot doctor` reads the scopes the app asks for from here.
COPY manifest.yml /app/manifest.yml
WORKDIR /app
ENV PATH=/opt/syncbot/bin:$PATH PYTHONUNBUFFERED=1 PORT=3000
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=2)"]
CMD ["syncbot", "serve"]
