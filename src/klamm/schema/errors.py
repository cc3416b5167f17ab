"""The registry's error tree, split by whose fault it is, with Confluent's codes on the class.

```
RegistryError                      (status, error_code, message): the JSON body clients parse
├── NotFoundError          404     40401 subject, 40402 version, 40403 schema, 40404..40409
├── IncompatibleSchemaError 409    409: the schema breaks the subject's compatibility level
├── UnprocessableError     422     42201 invalid schema, 42202 version, 42203 level, 42204 mode,
│                                  42205 operation not permitted, 42206 reference exists
└── StoreError             500     50001 the `_schemas` log could not be read or written,
                                   50002 timed out
```
The codes are the ones Confluent's RestExceptions use: confluent-kafka's SchemaRegistryClient and
KafkaJS's registry package branch on them, so they are part of the API.
"""

from __future__ import annotations

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
SUBJECT_SOFT_DELETED = 40404
SUBJECT_NOT_SOFT_DELETED = 40405
VERSION_SOFT_DELETED = 40406
VERSION_NOT_SOFT_DELETED = 40407
SUBJECT_COMPATIBILITY_NOT_CONFIGURED = 40408
SUBJECT_MODE_NOT_CONFIGURED = 40409
INCOMPATIBLE_SCHEMA = 409
INVALID_SCHEMA = 42201
INVALID_VERSION = 42202
INVALID_COMPATIBILITY_LEVEL = 42203
INVALID_MODE = 42204
OPERATION_NOT_PERMITTED = 42205
REFERENCE_EXISTS = 42206
STORE_ERROR = 50001
OPERATION_TIMEOUT = 50002


class RegistryError(Exception):
    """An error the REST API answers with `{"error_code": ..., "message": ...}`."""

    status = 500
    error_code = STORE_ERROR

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code

    def body(self) -> dict[str, object]:
        return {"error_code": self.error_code, "message": self.message}


class NotFoundError(RegistryError):
    status = 404
    error_code = SUBJECT_NOT_FOUND


class IncompatibleSchemaError(RegistryError):
    status = 409
    error_code = INCOMPATIBLE_SCHEMA


class UnprocessableError(RegistryError):
    status = 422
    error_code = INVALID_SCHEMA


class StoreError(RegistryError):
    status = 500
    error_code = STORE_ERROR


class InvalidSchemaError(UnprocessableError):
    """The schema text does not parse as its declared type (42201)."""

    error_code = INVALID_SCHEMA


def subject_not_found(subject: str) -> NotFoundError:
    return NotFoundError(f"Subject '{subject}' not found.", SUBJECT_NOT_FOUND)


def version_not_found(subject: str, version: object) -> NotFoundError:
    return NotFoundError(f"Version {version} not found.", VERSION_NOT_FOUND)


def schema_not_found(detail: str = "Schema not found") -> NotFoundError:
    return NotFoundError(detail, SCHEMA_NOT_FOUND)
