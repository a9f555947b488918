"""What the tests and the benchmarks both need: the episode mix, service processes, topic reading.

Not part of any service: nothing under ``services/`` imports it.
"""
