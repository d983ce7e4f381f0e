"""The liveness route both apps mount."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_runtime import liveness


def test_healthz_answers_ok_while_the_process_serves() -> None:
    app = FastAPI()
    app.include_router(liveness.router)

    response = TestClient(app).get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
