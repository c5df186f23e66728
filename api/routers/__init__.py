"""Routers of the error API, one per resource."""
