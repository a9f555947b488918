"""Carepath benchmarks: engine, pipeline, raw-client baseline, memory.

Entry point: ``python -m benchmarks.run`` (``make bench``).

Benchmarks are not tests: nothing here asserts a timing. ``docs/benchmarks.md`` describes the
method and quotes one run.
"""
