"""Schema Registry request latency: register (a new schema: one Kafka transaction) and lookup
(by id and by schema, from memory), through confluent-kafka's SchemaRegistryClient's REST layer,
against klamm's registry on a klamm broker started here.

    PYTHONPATH=src python -m bench.registry [--n 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka.schema_registry import SchemaRegistryClient

from klamm.testing import EmbeddedBroker
from tests.schema.conftest import RunningRegistry


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200, help="requests of each kind")
    n = parser.parse_args().n
    with EmbeddedBroker() as broker, RunningRegistry(broker.bootstrap) as registry:
        rest = SchemaRegistryClient(
            {"url": registry.url}
        )._rest_client  # uncached: every call is HTTP
        schemas = [
            json.dumps(
                {"type": "record", "name": f"R{i}", "fields": [{"name": "a", "type": "int"}]}
            )
            for i in range(n + 1)
        ]
        rest.post("subjects/warmup/versions", {"schema": schemas[n]})  # init_transactions once
        timings: dict[str, list[float]] = {"register (new schema)": [], "GET /schemas/ids/{id}": [],
                                           "POST /subjects/{s} (lookup)": []}  # fmt: skip
        for i in range(n):
            t = time.perf_counter()
            sid = rest.post(f"subjects/s{i}/versions", {"schema": schemas[i]})["id"]
            timings["register (new schema)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            rest.get(f"schemas/ids/{sid}")
            timings["GET /schemas/ids/{id}"].append(time.perf_counter() - t)
            t = time.perf_counter()
            rest.post(f"subjects/s{i}", {"schema": schemas[i]})
            timings["POST /subjects/{s} (lookup)"].append(time.perf_counter() - t)
        rest.session.close()
    print(f"{'request':32} latency over {n} requests")
    for name, samples in timings.items():
        print(f"{name:32} {_ms(samples)}")


if __name__ == "__main__":
    main()
