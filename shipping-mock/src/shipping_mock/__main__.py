"""``python -m shipping_mock``: serve the carrier mock."""

from shipping_mock.main import run

if __name__ == "__main__":
    run()
