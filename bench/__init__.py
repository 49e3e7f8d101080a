"""Benchmarks of the shared-memory ring against multiprocessing peers, run with ``make bench``."""
