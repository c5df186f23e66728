"""Tests of the analysis: baselines, anomalies, recommendations (pure, no I/O)."""
