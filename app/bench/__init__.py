"""Benchmarks: synthetic scale data, the `recengine bench` commands and their report."""
