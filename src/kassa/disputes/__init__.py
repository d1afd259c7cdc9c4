"""Disputes and chargebacks: an operator's record of a customer's claim about a top-up or an
activation, decided once (docs/disputes.md).

A dispute is opened within the policy's claim window (`[claims]`), stays ``open`` while support
looks into it — refunds are refused meanwhile where the policy says so (`open_dispute` in the
refund facts) — and is resolved once: ``rejected`` (nothing moves), ``accepted`` (an activation's
price returns to the balance) or ``charged_back`` (a top-up's USD credit is taken back, even
below zero, which freezes the account). Every step is an append-only `dispute_event`; every
ledger entry carries a memo a support agent can read.
"""
