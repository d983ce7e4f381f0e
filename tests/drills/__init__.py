"""Drills: the stack under failure (broker killed or paused, the order service crashing mid-request). `make drills`
runs them in a pytest session of their own, so the session's stack (tests/conftest.py) is theirs to break."""
