"""Public schemas of the error API, one module per resource."""
