"""function-runner's error API (FastAPI), served under ``/api/v1/errors``."""
