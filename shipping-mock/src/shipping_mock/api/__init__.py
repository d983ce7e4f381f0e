"""HTTP surface of the shipping mock: the carrier API, the admin API and the health check."""
