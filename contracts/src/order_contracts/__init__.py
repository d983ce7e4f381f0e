"""The order platform's event contract: what travels on `order-events` and `fulfillment-events`, and how it is named."""
