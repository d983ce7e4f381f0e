"""Adapters to the outside world, each behind a small port: the order store and the event publisher."""
