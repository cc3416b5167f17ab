"""Idempotent producers and transactions on the broker.

state.py        the transaction state machine, as data, and its records
producers.py    per-partition producer state (sequences, LSO, aborted txns): service "producers"
coordinator.py  the transaction coordinator: service "transactions"
orphans.py      open transactions the coordinator lost, and markers written by hand
"""

from __future__ import annotations

from klamm.broker.transactions.coordinator import TransactionCoordinator, TxnError
from klamm.broker.transactions.producers import ProducerStateService

__all__ = ["ProducerStateService", "TransactionCoordinator", "TxnError"]
