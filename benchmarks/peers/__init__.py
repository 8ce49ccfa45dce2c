"""Scripts run by peer systems' own interpreters (benchmarks/.peers/<name>/bin/python)."""
