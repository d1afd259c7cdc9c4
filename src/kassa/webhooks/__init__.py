"""Webhooks: signed deliveries of the outbox's events to the endpoints that want them.

How it fits together (docs/webhooks.md for users):

* `endpoints` — the endpoints (URL, event-type filter, description, optional customer account,
  ``whsec_`` secret with rotation overlap), managed through the API (scope ``webhooks:manage``)
  and ``kassa webhooks``;
* `deliveries` — the fan-out (`dispatch`: one pending delivery per matching enabled endpoint,
  ``dispatched_at`` stamped in the same transaction, so a state change's write path stays one
  INSERT into ``event``), the delivery log, redelivery of one event and replay since a time;
* `sender` — claims due deliveries with a lease (SKIP LOCKED on PostgreSQL), POSTs outside any
  transaction, records every attempt and schedules the next one (exponential waits with
  jitter over about three days); a ``410`` or a long run of failures disables the endpoint
  and raises ``webhook_endpoint.disabled``;
* `signing` — Standard Webhooks headers and signatures;
* `transport` — the SSRF-safe HTTP client: HTTPS, public resolved addresses only, connect to
  the address checked, no redirects, bounded answers and time.

Decisions: delivery is at least once — a worker killed between a POST and its record sends it
again after its lease lapses, with the same ``webhook-id`` (the event's id), which receivers use
to drop duplicates. Order is not guaranteed across events; ``subject.seq`` in the body orders
one subject's events. A pending delivery is a row, so a restart loses nothing. Secrets are
stored as they are (the sender must sign with them) and never returned after create or rotate.
"""
