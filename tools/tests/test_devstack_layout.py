"""The launcher and the run file agree: `make up` waits on the ports `dapr run -f dapr.yaml` binds."""

import yaml
from devstack.layout import APPS, Layout
from devstack.stack import stack_ports


def test_dapr_yaml_declares_the_ports_the_launcher_waits_on() -> None:
    run_file = yaml.safe_load((Layout.discover().root / "dapr.yaml").read_text())

    declared = {
        app["appID"]: (app["appPort"], app["daprHTTPPort"], app["daprGRPCPort"], app["metricsPort"])
        for app in run_file["apps"]
    }

    assert declared == {
        app.app_id: (app.app_port, app.dapr_http_port, app.dapr_grpc_port, app.metrics_port) for app in APPS
    }


def test_no_two_processes_of_the_stack_share_a_port() -> None:
    ports = stack_ports()

    assert len(ports) == len(set(ports))
