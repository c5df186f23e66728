# Image for function-runner's processes (worker, dispatcher, API). Add your own task modules on top.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY error_handling ./error_handling
COPY function_runner ./function_runner
COPY api ./api
COPY migrations ./migrations
RUN pip install --no-cache-dir .
ENTRYPOINT ["function-runner"]
