"""Pytest plugin: a real single-node Kafka broker for the test session.

Enable with ``pytest_plugins = ["tests.kafka_fixture"]`` (or ``-p tests.kafka_fixture``).
The session-scoped ``kafka_broker`` fixture yields a started
``deploy/kafka/broker.py`` ``Broker`` (use ``kafka_broker.bootstrap_servers``).
Tests using it are marked ``kafka`` automatically: deselect with ``-m "not kafka"``.
A missing Java or Maven fails the fixture (CI must provide them); it never skips.
"""
import importlib.util
import sys
from pathlib import Path

import pytest

BROKER_PY = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "broker.py"


def _load_broker_module():
    """Import deploy/kafka/broker.py (not a package) under a unique module name."""
    name = "iot_poison_monitor_kafka_broker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BROKER_PY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


broker_module = _load_broker_module()


def pytest_configure(config):
    config.addinivalue_line("markers", "kafka: needs the real Kafka broker (kafka_broker fixture, Java 17+)")


@pytest.hookimpl(tryfirst=True)  # before -m deselection
def pytest_collection_modifyitems(items):
    for item in items:
        if "kafka_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A started single-node KRaft broker on 127.0.0.1, stopped at the end of the session."""
    broker = broker_module.Broker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except broker_module.BrokerError as exc:
        pytest.fail(f"kafka_broker: {exc}", pytrace=False)
    yield broker
    broker.stop()
