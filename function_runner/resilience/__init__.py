"""Resilience shared by every worker: circuit breakers, retry budgets, fallbacks, service health."""
