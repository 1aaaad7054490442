"""Benchmarks for feedsvc (issue #5): corpus generator, ingest, peers and serving.

Run ``python -m bench.run --help``; see ``bench/README.md``. Never part of the test suite.
"""
