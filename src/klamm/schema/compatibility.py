"""Confluent's seven compatibility levels over a type's reader/writer check (formats/).

| level               | the new schema must                                  | against            |
|---------------------|------------------------------------------------------|--------------------|
| NONE                | -                                                    | -                  |
| BACKWARD            | read data written with the previous schema           | the latest version |
| BACKWARD_TRANSITIVE | read data written with every previous schema         | all versions       |
| FORWARD             | be readable by the previous schema                   | the latest version |
| FORWARD_TRANSITIVE  | be readable by every previous schema                 | all versions       |
| FULL                | both                                                 | the latest version |
| FULL_TRANSITIVE     | both                                                 | all versions       |

Soft-deleted versions take no part, as in Confluent's registry.
"""

from __future__ import annotations

from collections.abc import Sequence

from klamm.schema.formats import ParsedSchema

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


def check(level: str, new: ParsedSchema, previous: Sequence[ParsedSchema]) -> list[str]:
    """Why `new` breaks `level` against `previous` (oldest first); empty when it does not."""
    if level == "NONE" or not previous:
        return []
    against = list(previous) if level.endswith("_TRANSITIVE") else [previous[-1]]
    base = level.removesuffix("_TRANSITIVE")
    messages: list[str] = []
    for old in reversed(against):
        if new.schema_type != old.schema_type:
            messages.append(f"Incompatible schema type: {old.schema_type} -> {new.schema_type}")
            continue
        if base in ("BACKWARD", "FULL"):
            messages += [f"BACKWARD: {m}" for m in new.incompatibilities(old)]
        if base in ("FORWARD", "FULL"):
            messages += [f"FORWARD: {m}" for m in old.incompatibilities(new)]
    return messages
