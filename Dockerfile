# syntax=docker/dockerfile:1
# Kassa's production image: the product (src/kassa) and its locked dependencies, without the
# development tools (kassa-dev, the devnet, the test and lint tools). One image for every role;
# the command picks it (docker-compose.yml): `serve` (the default), `migrate`, `worker`,
# `watch --chain X`, `payout-worker`. docs/operations.md describes the deployment.

ARG PYTHON_VERSION=3.12

# ---- builder: uv installs the locked dependencies, then the project, into /opt/kassa -------
FROM python:${PYTHON_VERSION}-slim AS builder
# The same uv as ./dev uses.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_PROJECT_ENVIRONMENT=/opt/kassa \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python${PYTHON_VERSION} \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# The dependencies first (a layer that only changes with the lockfile). The workspace member's
# pyproject.toml is needed to read uv.lock, but --no-dev leaves kassa-dev out.
COPY pyproject.toml uv.lock README.md ./
COPY dev-tools/pyproject.toml dev-tools/README.md dev-tools/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --no-install-workspace
# Then Kassa itself, as a regular (not editable) install.
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package kassa

# ---- runtime: the environment only, run by an unprivileged user ----------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 kassa \
    && useradd --system --uid 10001 --gid kassa --home-dir /var/lib/kassa --create-home \
        --shell /usr/sbin/nologin kassa
COPY --from=builder /opt/kassa /opt/kassa
ENV PATH=/opt/kassa/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KASSA_DATA_DIR=/var/lib/kassa \
    KASSA_HOST=0.0.0.0 \
    KASSA_PORT=8000
USER kassa
WORKDIR /var/lib/kassa
EXPOSE 8000
# The API role's liveness probe (/healthz: the process answers). The worker roles have no HTTP
# port: docker-compose.yml switches this check off for them (see docs/operations.md).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('KASSA_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["kassa"]
CMD ["serve"]
