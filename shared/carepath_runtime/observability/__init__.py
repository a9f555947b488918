"""Metrics (Prometheus) and traces (OpenTelemetry) every service shares.

Nothing here labels or attributes a metric or a span with a per-patient value: label values
come from closed vocabularies (service, team, step, status, route template, status class,
topic, group, partition) and never from an episode id, a referral id or a submitted value.
"""
