# Image for function-runner's processes (worker, dispatcher, API). Add your own task modules on top.
# The base is pinned to a Python patch release on a Debian release; pin its digest too
# (python:3.11.13-slim-bookworm@sha256:...) when you build from a registry you trust.
FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FUNCTION_RUNNER_DATA_DIR=/var/lib/function-runner
WORKDIR /app
COPY pyproject.toml README.md alembic.ini constraints.txt ./
COPY error_handling ./error_handling
COPY function_runner ./function_runner
COPY api ./api
COPY migrations ./migrations
# the versions of the lock file (constraints.txt), then an unprivileged user that owns only its data folder
RUN pip install -c constraints.txt . \
    && groupadd --system --gid 10001 function-runner \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin function-runner \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/function-runner
USER 10001:10001
ENTRYPOINT ["function-runner"]
