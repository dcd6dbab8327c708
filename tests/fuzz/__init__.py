"""Fuzz targets (issue 10): ``fuzz_one(data)`` per target, run by hypothesis and by atheris.

See refs/hostile.md for how to run them under atheris and with ``--hypothesis-profile=long``.
"""
