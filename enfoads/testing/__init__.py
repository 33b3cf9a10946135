"""Offline stand-ins for the hub's models: random weights from real configs, real loading code.

For the tests, the benchmarks and the notebook's offline test mode; never used in production.
"""
