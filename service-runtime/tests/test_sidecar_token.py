"""The sidecar's token: only the exact value passes, and a header FastAPI hands over as any str is safe to check."""

import pytest
from pydantic import SecretStr
from service_runtime.sidecar_token import is_sidecar_token

EXPECTED = SecretStr("s3cret-token")


def test_the_exact_token_passes() -> None:
    assert is_sidecar_token("s3cret-token", EXPECTED)


@pytest.mark.parametrize("presented", [None, "", "s3cret-toke", "s3cret-token ", "S3CRET-TOKEN", "s3cret-tökén"])
def test_anything_else_is_refused(presented: str | None) -> None:
    assert not is_sidecar_token(presented, EXPECTED)
