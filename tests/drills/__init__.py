"""Drills: the stack under failure (broker killed or paused, backlogs, apps and sidecars killed, a create claimed then
crashed). `make drills` runs them in a pytest session of their own, so the session's stack (tests/conftest.py) is
theirs to break. Every drill ends with the audit of every request it sent (tests/support/audit.py); the session's
table of audits is printed, and `make drills` writes it to tests/drills/REPORT.md."""
