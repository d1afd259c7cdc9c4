"""Imports every table module so `metadata` knows the whole schema (Alembic, schema tests)."""

from kassa.accounts import tables as _accounts  # noqa: F401
from kassa.apikeys import tables as _apikeys  # noqa: F401
from kassa.db import clock_offset as _clock_offset  # noqa: F401
from kassa.db.metadata import metadata
from kassa.deposits import tables as _deposits  # noqa: F401
from kassa.disputes import tables as _disputes  # noqa: F401
from kassa.events import tables as _events  # noqa: F401
from kassa.ledger import tables as _ledger  # noqa: F401
from kassa.payouts import tables as _payouts  # noqa: F401
from kassa.pricing import tables as _pricing  # noqa: F401
from kassa.reports.reconciliation import tables as _reconciliation  # noqa: F401
from kassa.spending import tables as _spending  # noqa: F401
from kassa.webhooks import tables as _webhooks  # noqa: F401

__all__ = ["metadata"]
