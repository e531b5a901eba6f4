"""The performance benchmark: `python -m mockehr.bench` (see mockehr/bench/run.py and the README)."""
