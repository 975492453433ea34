"""Tests of the Faust agents of streams/app.py, driven in-process with ``test_context()``."""
