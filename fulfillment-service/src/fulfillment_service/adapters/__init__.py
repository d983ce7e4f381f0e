"""Adapters: the carrier (through the sidecar), fulfillment records (Dapr state), event publishing (Dapr pub/sub)."""
