"""Benchmarks: run on demand, results recorded in docs/performance.md, never asserted."""
