"""Keyword-only read functions over the system of record, shared by the API and the CLI, one module
per domain (attempts, history, stats and its window plan, services). Nothing here writes; each
function takes an open session and returns ORM rows or small frozen values."""
