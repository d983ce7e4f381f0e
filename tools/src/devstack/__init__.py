"""The local stack: installs and runs Kafka, Dapr's placement and scheduler, and the apps under `dapr run -f`."""
