"""Fixtures of the parity tests (harness.py): `parity_broker`, `kafkajs`, `names`."""

from tests.parity.harness import kafkajs, names, parity_broker

__all__ = ["kafkajs", "names", "parity_broker"]
