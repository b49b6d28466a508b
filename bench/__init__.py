"""Benchmarks: each module prints its figures; the README records them with the command that produced them."""
