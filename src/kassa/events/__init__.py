"""Events for host services and operators: the transactional outbox.

Every state change a host service cares about (a deposit seen or credited, a withdrawal paid,
an account frozen, …) appends an event row in the same database transaction as the change
(`kassa.events.outbox.record`). Delivery (fan-out to webhook endpoints, signing, retries) reads
those rows later and lives above this package; nothing here talks to the network.
"""
