"""The local stack: installs and runs Kafka and the apps with their sidecars under `dapr run -f`."""
