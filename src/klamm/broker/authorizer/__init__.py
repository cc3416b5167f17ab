"""Kafka's authorization model: ACLs, the authorizer that checks them, and where they persist.

`model` holds the vocabulary (Kafka's wire codes); `interface` the one question handlers ask
(`Authorizer.authorize`) and the authorizer used when none is configured (everything allowed,
as in Kafka without `authorizer.class.name`).
"""
