"""Benchmarks of taskfarm: `make bench` runs them all and writes bench/results/.

Every goal is a ratio against a baseline measured in the same run, so that the numbers mean
the same on a faster or a busier machine; nothing here asserts a time.
"""
