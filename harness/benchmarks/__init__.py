"""Benchmarks run by `make bench`; each writes its figures under docs/."""
