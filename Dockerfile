# One image per app of the workspace: docker build --build-arg APP=order-service --build-arg MODULE=order_service .
# (docker-compose.yml builds all three.) Not built on the project's own machines, which have no Docker engine.
FROM python:3.11-slim
ARG APP
ARG MODULE
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY contracts contracts
COPY service-runtime service-runtime
COPY order-service order-service
COPY fulfillment-service fulfillment-service
COPY shipping-mock shipping-mock
COPY tools tools
RUN uv sync --frozen --no-dev --package "${APP}"
ENV MODULE=${MODULE} PATH=/app/.venv/bin:$PATH
WORKDIR /app/${APP}
CMD ["sh", "-c", "exec python -m \"$MODULE\""]
