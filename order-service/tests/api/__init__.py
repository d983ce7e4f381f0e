"""API tests: the real FastAPI app over HTTP (in process), with the use cases built on in-memory fakes."""
