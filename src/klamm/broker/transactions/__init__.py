"""Idempotent producers and transactions on the broker.

state.py        the transaction state machine, as data, and its records
producer_ids.py which producer ids were handed out (InitProducerId) and which never were
producers.py    per-partition producer state (sequences, LSO, aborted txns): Broker.producers
coordinator.py  the transaction coordinator: Broker.transactions
orphans.py      open transactions the coordinator lost, and markers written by hand
"""

from __future__ import annotations

from klamm.broker.transactions.coordinator import TransactionCoordinator, TxnError
from klamm.broker.transactions.producer_ids import ProducerIdAllocator
from klamm.broker.transactions.producers import ProducerStateService

__all__ = ["ProducerIdAllocator", "ProducerStateService", "TransactionCoordinator", "TxnError"]
