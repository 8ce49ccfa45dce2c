"""durable's benchmark harness: each case measured next to its floor, in one run.

Run `python -m benchmarks --help` from the repository root; see README.md.
"""
