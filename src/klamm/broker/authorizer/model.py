"""The vocabulary of Kafka's ACLs, with the codes the wire protocol uses for them.

The codes are Kafka's (org.apache.kafka.common.resource.ResourceType, acl.AclOperation,
acl.AclPermissionType, resource.PatternType): CreateAcls, DescribeAcls and DeleteAcls carry them
as int8, and every client's admin API sends them unchanged.
"""

from __future__ import annotations

import enum

# The principal of a connection that did not authenticate (PLAINTEXT, or SSL without a client
# certificate), as Kafka names it.
ANONYMOUS = "User:ANONYMOUS"
# The name that matches every resource of a type in a LITERAL pattern, and every principal/host.
WILDCARD = "*"


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class Operation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class Permission(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only
    DENY = 2
    ALLOW = 3


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only
    MATCH = 2  # filters only: every pattern that matches the name
    LITERAL = 3
    PREFIXED = 4


# The resource name of the CLUSTER resource, the only one of its type.
CLUSTER_NAME = "kafka-cluster"
