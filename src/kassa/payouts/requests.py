"""Refund and withdrawal requests: gather the facts, ask the policy, reserve the funds.

A quote is a policy decision on current facts at locked rates, stored with an id and an expiry
(`kassa.payouts.quotes`); a request naming it commits exactly its figures. A request is the
same decision made once more inside one unit of work (at the quote's rates and fee, or at fresh
ones recorded as a quote of its own), and, when allowed, recorded with
its funds reserved by a ledger hold (gross USD, from the customer's balance to
``clearing:payouts:USD``). The payout worker later captures the hold when the coins leave, or
voids it when the request is rejected, cancelled or fails — the funds then return.

Order of work (no database transaction is open during a price lookup):
1. lock the payout-side rate (ask) for the request's id, outside any transaction — or, for a
   request naming a quote, take the quote's locks;
2. in one transaction: claim the Idempotency-Key (a retry gets the stored request or refusal),
   lock the top-up's deposit row (refunds of one top-up are decided one at a time, so "one
   refund per top-up" holds under races), gather the facts, decide, check the account's daily
   limits, and — if allowed — create the hold and the request.

A new request is screened for operator review (`kassa.payouts.review`): the policy's own
review, an amount above the review threshold, a destination never paid before. With a reason
it waits in ``pending_review``; without, it is ``approved`` at once. The request also keeps how
the policy charges the network fee (``fee_charge``) and its flat fee, for the record: the payout
worker sends the committed coins and the house pays the real fee (`kassa.payouts.worker.pricing`).

Under a policy whose ``pricing`` is ``at_approval`` (`kassa.payouts.repricing`), the approval
that makes a waiting request approved prices it again at fresh locks (`approval_locks`, taken
before the approval's transaction, then `approve`); `preview_repricing` shows what that would
commit.

Destinations are checked for the asset's chain and network (checksums, bech32, base58check,
EIP-55) and stored in canonical form; Kassa's own deposit addresses are refused. A refund goes
to the top-up's sender, which is checked the same way.

Facts come from Kassa's own records: the deposit (credited USD, payment time, sender), the
ledger balance, the account state and its history, the last usage, other open requests.
``open_dispute`` is true while a dispute on the account is open (`kassa.disputes`).

Stored requests are read, created and moved by `kassa.payouts.store`; ``get``, ``events`` and
``for_account`` are offered here too, as the reading half of this service's API.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from kassa.accounts import states
from kassa.accounts.service import CustomerAccount
from kassa.assets import chain_of, fee_asset_of, on_chain
from kassa.chains.address import parse_address
from kassa.chains.scanning import SenderKind
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits import records
from kassa.deposits.addresses import match_key
from kassa.deposits.model import DepositStatus
from kassa.deposits.settings import ChainsSettings
from kassa.deposits.tables import deposit_address
from kassa.disputes import service as disputes
from kassa.ledger import holds, house, idempotency
from kassa.ledger.accounts import get_balance
from kassa.ledger.errors import AccountFrozen, InsufficientFunds
from kassa.ledger.idempotency import OK, Request, StoredOutcome
from kassa.ledger.tables import idempotency_record
from kassa.money import USD, Asset, Money, asset
from kassa.payouts import quotes, repricing, review, store
from kassa.payouts.errors import (
    AssetNotPayable,
    DestinationIsOwnAddress,
    PayoutLimitExceeded,
    QuoteNotFound,
    RefundRefused,
    TopUpNotCredited,
    TopUpNotFound,
    WithdrawalRefused,
)
from kassa.payouts.fee_quotes import FeeQuotes, QuotedFee
from kassa.payouts.model import (
    PayoutRequest,
    RequestKind,
    RequestStatus,
    reasons_json,
)
from kassa.payouts.quotes import Quote, Wanted
from kassa.payouts.settings import PayoutSettings
from kassa.policy import (
    AccountFacts,
    Decision,
    DecisionKind,
    NetworkFee,
    Policy,
    Pricing,
    RateFacts,
    Repricing,
    TopUpFacts,
    decision_of,
    network_fee_charge,
    pricing_of,
    quote_refund,
    quote_withdrawal,
    reprice,
    reprices,
)
from kassa.policy.facts import FeeSource
from kassa.policy.model import AccountState, Destination, StateReason
from kassa.pricing.errors import NoRate
from kassa.pricing.locks import RateLock, Side, get_lock
from kassa.pricing.model import symbol_of
from kassa.pricing.service import PricingService
from kassa.spending.usage import last_usage_at

__all__ = [
    "PayoutRequest",
    "Payouts",
    "account_facts",
    "network_fee",
    "parse_payout_asset",
    "rate_facts",
    "topup_facts",
]


@dataclass(frozen=True, slots=True)
class PayoutLocks:
    """The rates a new payout is priced at, locked before its transaction starts."""

    request_id: uuid.UUID
    lock: RateLock
    fee_lock: RateLock | None
    """The fee asset's rate, when the fee is paid in another coin (USDT pays in ETH or TRX)."""
    quote_id: uuid.UUID | None = None
    """The stored quote whose rates these are, when the request names one."""
    chain_fee: QuotedFee | None = None
    """The network fee read from the chain when the rates were locked (None: the configured
    estimate applies)."""


# --------------------------------------------------------------------------- facts


def account_facts(conn: Connection, account: CustomerAccount) -> AccountFacts:
    balance = get_balance(conn, account.ledger_account_id)
    stored = states.parse_state(account.status)
    state = states.effective_state(stored, balance.frozen)
    change = states.latest_change(conn, account.id)
    reason: StateReason | None = None
    changed_at: datetime | None = None
    if state is not states.AccountState.ACTIVE:
        if change is not None and change.to_state is state:
            changed_at = change.changed_at
            try:
                reason = StateReason(change.reason_code.value)
            except ValueError:
                reason = None
        elif state is states.AccountState.FROZEN:
            reason = StateReason.NEGATIVE_BALANCE
            changed_at = account.created_at if change is None else change.changed_at
        else:
            changed_at = account.created_at
    return AccountFacts(
        available_usd=balance.available,
        state=AccountState(state.value),
        state_reason=reason,
        state_changed_at=changed_at,
        last_usage_at=last_usage_at(conn, account.id),
        pending_refund_count=store.open_refunds(conn, account.id),
        open_dispute=disputes.has_open(conn, account.id),
    )


def topup_facts(conn: Connection, deposit: records.Deposit) -> TopUpFacts:
    if deposit.usd_amount is None or deposit.status is not DepositStatus.CREDITED:
        raise TopUpNotCredited(
            f"deposit {deposit.id} is {deposit.status.value}: only credited top-ups are refundable"
        )
    refund_count, refunded = store.paid_or_open_of_topup(conn, deposit.id)
    ambiguous = deposit.sender_kind is SenderKind.AMBIGUOUS
    return TopUpFacts(
        id=str(deposit.id),
        amount=deposit.money,
        credited_usd=Money(deposit.usd_amount, USD),
        paid_at=deposit.first_seen_at,
        sender_address=None if ambiguous else deposit.sender,
        sender_ambiguous=ambiguous,
        refund_count=refund_count,
        refunded_usd=refunded + disputes.charged_back_usd(conn, deposit.id),
    )


def rate_facts(lock: RateLock, coin: Asset) -> RateFacts:
    return RateFacts(
        asset=coin,
        usd_per_unit=lock.rate,
        source=",".join(lock.sources),
        lock_id=str(lock.id),
    )


def network_fee(
    settings: PayoutSettings,
    coin: Asset,
    fee_rate: RateFacts | None,
    *,
    quoted: QuotedFee | None = None,
) -> NetworkFee:
    """The chain fee one payout of ``coin`` is charged: ``quoted`` when the chain was asked
    (`kassa.payouts.fee_quotes`: margin included, or the configured estimate when the node
    could not answer, with its source), else the configured estimate. ``fee_rate`` prices a
    fee paid in another coin (USDT pays in ETH or TRX)."""
    if quoted is None:
        amount, source = settings.fee_estimate(coin.code.value), FeeSource.FALLBACK
    else:
        amount, source = quoted.amount, quoted.source
    needs_rate = amount.asset != coin
    return NetworkFee(amount=amount, rate=fee_rate if needs_rate else None, source=source)


# --------------------------------------------------------------------------- the service


@dataclass(frozen=True, slots=True)
class Payouts:
    """Everything refunds and withdrawals need, fixed at start-up."""

    database: Database
    clock: Clock
    pricing: PricingService
    policy: Policy
    settings: PayoutSettings
    chains: ChainsSettings
    fee_quotes: FeeQuotes | None = None
    """Live network fees for quotes; None: the configured estimates (`network_fee`)."""

    # -- quotes (kassa.payouts.quotes) ----------------------------------------------------

    def quote_refund(
        self, account: CustomerAccount, deposit_id: uuid.UUID
    ) -> tuple[Decision, Quote | None]:
        """Decide a refund at locked rates; when it would be paid on chain, store it as a
        binding quote (None otherwise: there is nothing to commit)."""
        with self.database.transaction() as conn:
            topup = self._topup(conn, account, deposit_id)
        coin = topup.money.asset
        locks = self.lock_rates(coin, topup.sender)
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            deposit = self._topup(conn, account, deposit_id)
            fee = self._locked_fee(coin, locks)
            decision = self._refund_decision(conn, account, deposit, locks, fee, now)
            if not (decision.allowed and _to_wallet(decision) and deposit.sender):
                return decision, None
            sender = self._check_destination(conn, coin, deposit.sender, refund=True)
            wanted = Wanted(
                "refund", account.id, coin.code.value, deposit_id=deposit.id, destination=sender
            )
            return decision, self._store_quote(conn, wanted, locks, fee, decision, now)

    def quote_withdrawal(
        self, account: CustomerAccount, amount_usd: Money, coin: Asset, address: str
    ) -> tuple[Decision, Quote | None]:
        """Decide a withdrawal at locked rates; when allowed, store it as a binding quote."""
        with self.database.transaction() as conn:
            self._check_destination(conn, coin, address)
        locks = self.lock_rates(coin, address)
        with self.database.transaction() as conn:
            canonical = self._check_destination(conn, coin, address)
            now = self.clock.now(conn)
            fee = self._locked_fee(coin, locks)
            decision = self._withdrawal_decision(conn, account, amount_usd, coin, locks, fee, now)
            if not decision.allowed:
                return decision, None
            wanted = Wanted(
                "withdrawal",
                account.id,
                coin.code.value,
                destination=canonical,
                amount_usd=amount_usd,
            )
            return decision, self._store_quote(conn, wanted, locks, fee, decision, now)

    def _refund_decision(
        self,
        conn: Connection,
        account: CustomerAccount,
        deposit: records.Deposit,
        locks: PayoutLocks,
        fee: NetworkFee,
        now: datetime,
    ) -> Decision:
        """The policy's refund decision at `locks`' rate: one computation for the quote and
        for the request that commits it, so their figures can only differ by the facts."""
        coin = deposit.money.asset
        return quote_refund(
            self.policy,
            topup_facts(conn, deposit),
            account_facts(conn, account),
            rate_facts(locks.lock, coin),
            fee,
            now,
        )

    def _withdrawal_decision(
        self,
        conn: Connection,
        account: CustomerAccount,
        amount_usd: Money,
        coin: Asset,
        locks: PayoutLocks,
        fee: NetworkFee,
        now: datetime,
    ) -> Decision:
        """The policy's withdrawal decision at `locks`' rate (see `_refund_decision`)."""
        return quote_withdrawal(
            self.policy,
            account_facts(conn, account),
            amount_usd,
            coin,
            rate_facts(locks.lock, coin),
            fee,
            now,
        )

    def _store_quote(
        self,
        conn: Connection,
        wanted: Wanted,
        locks: PayoutLocks,
        fee: NetworkFee,
        decision: Decision,
        now: datetime,
        request_id: uuid.UUID | None = None,
        quote_id: uuid.UUID | None = None,
    ) -> Quote:
        return quotes.insert_quote(
            conn,
            wanted,
            quote_id=quote_id or locks.request_id,
            rate_lock_id=locks.lock.id,
            fee_rate_lock_id=None if locks.fee_lock is None else locks.fee_lock.id,
            fee=fee,
            decision=decision,
            now=now,
            ttl=timedelta(seconds=self.settings.quotes.ttl_seconds),
            request_id=request_id,
        )

    def quote_locks(self, quote_id: uuid.UUID) -> PayoutLocks:
        """The locked rates of a stored quote, for a request that names it. Whether the quote
        may be used (account, expiry, use, what it quoted) is checked when the request is
        created, under a row lock."""
        with self.database.transaction() as conn:
            quote = quotes.get(conn, quote_id)
            if quote is None:
                raise QuoteNotFound(f"no quote {quote_id}")
            lock = get_lock(conn, quote.rate_lock_id)
            fee_lock = None
            if quote.fee_rate_lock_id is not None:
                fee_lock = get_lock(conn, quote.fee_rate_lock_id)
        return PayoutLocks(uuid.uuid4(), lock, fee_lock, quote_id)

    def _bound_fee(
        self, conn: Connection, coin: Asset, locks: PayoutLocks, wanted: Wanted, now: datetime
    ) -> tuple[NetworkFee, Quote | None]:
        """The network fee a request is priced with: its quote's, when it names one (checked
        usable), else a fresh estimate at the locked fee rate."""
        if locks.quote_id is None:
            return self._locked_fee(coin, locks), None
        quote = quotes.usable(conn, locks.quote_id, wanted, now)
        fee_rate = None
        if locks.fee_lock is not None and quote.network_fee.asset != coin:
            fee_rate = rate_facts(locks.fee_lock, quote.network_fee.asset)
        return NetworkFee(amount=quote.network_fee, rate=fee_rate), quote

    def _commit_quote(
        self,
        conn: Connection,
        created: PayoutRequest,
        quote: Quote | None,
        wanted: Wanted,
        locks: PayoutLocks,
        fee: NetworkFee,
        decision: Decision,
        now: datetime,
    ) -> None:
        """Mark the request's quote used, or store the fresh one it was priced with, used."""
        if quote is not None:
            quotes.mark_used(conn, quote.id, created.id, now)
            return
        if created.quote_id is None:  # pragma: no cover - _create always sets one
            raise RuntimeError(f"request {created.id} without a quote id")
        self._store_quote(
            conn,
            wanted,
            locks,
            fee,
            decision,
            now,
            request_id=created.id,
            quote_id=created.quote_id,
        )

    def _topup(
        self, conn: Connection, account: CustomerAccount, deposit_id: uuid.UUID
    ) -> records.Deposit:
        deposit = records.get(conn, deposit_id)
        if deposit is None or deposit.customer_account_id != account.id:
            raise TopUpNotFound(f"account {account.external_id} has no top-up {deposit_id}")
        return deposit

    def _check_destination(
        self, conn: Connection, coin: Asset, address: str, *, refund: bool = False
    ) -> str:
        """The canonical address, refusing malformed, foreign-network and own addresses.

        A refund's destination is the top-up's sender as the watcher recorded it: checked the
        same way, since a node's answer is no more trusted than a customer's."""
        if not on_chain(coin):
            raise AssetNotPayable(f"{coin.code} is not paid out on a chain")
        chain = chain_of(coin)
        network = self.chains.of(chain).network_value()
        canonical = str(parse_address(address, network))
        own = conn.execute(
            select(deposit_address.c.id).where(
                deposit_address.c.chain == chain.value,
                deposit_address.c.match_key == match_key(chain, canonical),
            )
        ).first()
        if own is not None:
            if refund:
                raise DestinationIsOwnAddress(
                    f"the top-up came from {canonical}, one of Kassa's own deposit addresses; "
                    "it cannot be refunded there (an operator can credit or withdraw instead)"
                )
            raise DestinationIsOwnAddress(
                f"{canonical} is one of Kassa's own deposit addresses; pay out to a wallet "
                "outside Kassa"
            )
        return canonical

    # -- requests -------------------------------------------------------------------------

    def _locked_fee(self, coin: Asset, locks: PayoutLocks) -> NetworkFee:
        """The network fee read when the rates were locked (or the configured estimate),
        priced at the fee asset's locked rate when it differs."""
        fee_lock = locks.fee_lock
        fee_rate = None if fee_lock is None else rate_facts(fee_lock, fee_asset_of(coin))
        return network_fee(self.settings, coin, fee_rate, quoted=locks.chain_fee)

    def lock_rates(self, coin: Asset, destination: str | None = None) -> PayoutLocks:
        """Lock the ask rates a new payout of `coin` is priced at, and read its network fee
        from the chain (`fee_quotes`; to `destination`, or a typical one). Outside any
        transaction: the rate sources and the nodes may be slow, and nothing may wait on them
        holding a lock."""
        request_id = uuid.uuid4()
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
        lock = self.pricing.lock(
            purpose=f"payout:{request_id}", asset=coin.code, side=Side.ASK, at=now
        )
        fee_asset = fee_asset_of(coin)
        fee_lock = None
        if fee_asset != coin:
            fee_lock = self.pricing.lock(
                purpose=f"payout:{request_id}:fee", asset=fee_asset.code, side=Side.ASK, at=now
            )
        chain_fee = None if self.fee_quotes is None else self.fee_quotes.fee(coin, destination)
        return PayoutLocks(request_id, lock, fee_lock, chain_fee=chain_fee)

    def refund_route(
        self, conn: Connection, account: CustomerAccount, deposit_id: uuid.UUID
    ) -> tuple[Asset, str | None]:
        """The coin a refund of `account`'s top-up `deposit_id` is paid in, and where it goes
        (the wallet the money came from, when known): what its network fee is read for."""
        topup = self._topup(conn, account, deposit_id)
        return topup.money.asset, topup.sender

    def request_refund(
        self,
        account: CustomerAccount,
        deposit_id: uuid.UUID,
        *,
        request: Request,
        actor: str,
    ) -> PayoutRequest:
        """Decide and, when allowed, queue a refund, in transactions of its own."""
        with self.database.transaction() as conn:
            coin, sender = self.refund_route(conn, account, deposit_id)
            stored = self._stored(conn, request)
            if stored is not None:
                return stored
        locks = self.lock_rates(coin, sender)
        with self.database.transaction() as conn:
            return self.create_refund(
                conn, account, deposit_id, locks, request=request, actor=actor
            )

    def create_refund(
        self,
        conn: Connection,
        account: CustomerAccount,
        deposit_id: uuid.UUID,
        locks: PayoutLocks,
        *,
        request: Request,
        actor: str,
    ) -> PayoutRequest:
        """Decide and, when allowed, queue a refund in `conn`'s transaction, priced at `locks`
        (`lock_rates` of the top-up's coin). A refusal is stored under the key and raised."""
        claimed = idempotency.claim(conn, request, self.clock.now(conn))
        if isinstance(claimed, StoredOutcome):
            return _replay(conn, claimed)
        now = self.clock.now(conn)
        locked = records.get(conn, deposit_id, for_update=True)
        if locked is None or locked.customer_account_id != account.id:
            raise TopUpNotFound(f"account {account.external_id} has no top-up {deposit_id}")
        coin = locked.money.asset
        wanted = Wanted("refund", account.id, coin.code.value, deposit_id=locked.id)
        fee, quote = self._bound_fee(conn, coin, locks, wanted, now)
        decision = self._refund_decision(conn, account, locked, locks, fee, now)
        sender = locked.sender if _to_wallet(decision) else None
        if not decision.allowed or not sender:
            summary = decision.summary()
            if decision.allowed:
                # The policy decides refunds to the balance (nothing to send) and refuses an
                # unknown sender itself; this is the last guard before coins would move.
                summary = "this refund has no wallet to go to: " + summary
            refused = RefundRefused(summary, decision.as_record())
            _store_refusal(conn, claimed, refused)
            raise refused
        destination = self._check_destination(conn, coin, sender, refund=True)
        if quote is not None:
            quotes.check_figures(quote, decision)
        self._within_limits(conn, claimed, account, decision, now)
        created = self._create(
            conn,
            claimed,
            request_id=locks.request_id,
            kind=RequestKind.REFUND,
            account=account,
            deposit_id=locked.id,
            coin=coin,
            destination=destination,
            decision=decision,
            lock=locks.lock,
            actor=actor,
            now=now,
            quote_id=uuid.uuid4() if quote is None else quote.id,
        )
        wanted = replace(wanted, destination=destination)
        self._commit_quote(conn, created, quote, wanted, locks, fee, decision, now)
        idempotency.complete(conn, claimed, OK, str(created.id), None)
        return created

    def request_withdrawal(
        self,
        account: CustomerAccount,
        amount_usd: Money,
        coin: Asset,
        address: str,
        *,
        request: Request,
        actor: str,
    ) -> PayoutRequest:
        """Decide and, when allowed, queue a withdrawal, in transactions of its own."""
        with self.database.transaction() as conn:
            self._check_destination(conn, coin, address)
            stored = self._stored(conn, request)
            if stored is not None:
                return stored
        locks = self.lock_rates(coin, address)
        with self.database.transaction() as conn:
            return self.create_withdrawal(
                conn, account, amount_usd, coin, address, locks, request=request, actor=actor
            )

    def create_withdrawal(
        self,
        conn: Connection,
        account: CustomerAccount,
        amount_usd: Money,
        coin: Asset,
        address: str,
        locks: PayoutLocks,
        *,
        request: Request,
        actor: str,
    ) -> PayoutRequest:
        """Decide and, when allowed, queue a withdrawal in `conn`'s transaction, priced at
        `locks` (`lock_rates` of `coin`). A refusal is stored under the key and raised."""
        claimed = idempotency.claim(conn, request, self.clock.now(conn))
        if isinstance(claimed, StoredOutcome):
            return _replay(conn, claimed)
        canonical = self._check_destination(conn, coin, address)
        now = self.clock.now(conn)
        wanted = Wanted(
            "withdrawal", account.id, coin.code.value, destination=canonical, amount_usd=amount_usd
        )
        fee, quote = self._bound_fee(conn, coin, locks, wanted, now)
        decision = self._withdrawal_decision(conn, account, amount_usd, coin, locks, fee, now)
        if not decision.allowed:
            refused = WithdrawalRefused(decision.summary(), decision.as_record())
            _store_refusal(conn, claimed, refused)
            raise refused
        if quote is not None:
            quotes.check_figures(quote, decision)
        self._within_limits(conn, claimed, account, decision, now)
        created = self._create(
            conn,
            claimed,
            request_id=locks.request_id,
            kind=RequestKind.WITHDRAWAL,
            account=account,
            deposit_id=None,
            coin=coin,
            destination=canonical,
            decision=decision,
            lock=locks.lock,
            actor=actor,
            now=now,
            quote_id=uuid.uuid4() if quote is None else quote.id,
        )
        self._commit_quote(conn, created, quote, wanted, locks, fee, decision, now)
        idempotency.complete(conn, claimed, OK, str(created.id), None)
        return created

    def _within_limits(
        self,
        conn: Connection,
        claimed: idempotency.Claim,
        account: CustomerAccount,
        decision: Decision,
        now: datetime,
    ) -> None:
        """Refuse, and store the refusal under the key, a request over the daily limits."""
        try:
            review.check_daily_limits(
                conn, self.settings.review, account.id, decision.breakdown.gross_usd, now
            )
        except PayoutLimitExceeded as refused:
            _store_refusal(conn, claimed, refused)
            raise

    def _stored(self, conn: Connection, request: Request) -> PayoutRequest | None:
        """The request a retry refers to (or its stored refusal, raised), else None."""
        row = conn.execute(
            select(idempotency_record).where(
                idempotency_record.c.scope == request.key.scope,
                idempotency_record.c.key == request.key.key,
            )
        ).first()
        if row is None or row.outcome is None:
            return None
        outcome = idempotency.replayed(
            request, row.operation, row.fingerprint, row.outcome, row.resource_id, row.detail
        )
        return _replay(conn, outcome)

    def _create(
        self,
        conn: Connection,
        claimed: idempotency.Claim,
        *,
        request_id: uuid.UUID,
        kind: RequestKind,
        account: CustomerAccount,
        deposit_id: uuid.UUID | None,
        coin: Asset,
        destination: str,
        decision: Decision,
        lock: RateLock,
        actor: str,
        now: datetime,
        quote_id: uuid.UUID,
    ) -> PayoutRequest:
        b = decision.breakdown
        if b.net_native is None:
            raise RuntimeError("a payout decision without a native amount")
        fees = b.handling_fee_usd + b.flat_fee_usd + b.provider_fee_usd
        try:
            hold = holds.create_hold(
                conn,
                debit_account_id=account.ledger_account_id,
                credit_account_id=house.payout_clearing(conn, now).id,
                amount=b.gross_usd,
                now=now,
                request=None,
                memo=f"{kind.value} {request_id}",
                actor=actor,
            )
        except (InsufficientFunds, AccountFrozen) as refused:
            # The balance moved since the policy read it (another request of the same account
            # committed first): the refusal is this key's outcome, stored like the policy's.
            idempotency.complete_refused(conn, claimed, refused)
            raise
        screening = review.screen(
            conn, self.settings.review, self.policy, decision, coin, destination
        )
        status = screening.status
        said = decision.summary()
        if screening.reasons:
            said += " Waits for review: " + "; ".join(r.detail for r in screening.reasons) + "."
        return store.create(
            conn,
            dict(
                id=request_id,
                kind=kind.value,
                customer_account_id=account.id,
                deposit_id=deposit_id,
                asset=coin.code.value,
                destination=destination,
                status=status.value,
                policy=decision.policy,
                gross_usd=b.gross_usd.amount,
                fees_usd=fees.amount,
                network_fee_usd=b.network_fee_charged_usd.amount,
                net_usd=b.net_usd.amount,
                network_fee_native=None
                if b.network_fee_native is None
                else b.network_fee_native.amount,
                network_fee_asset=None
                if b.network_fee_native is None
                else b.network_fee_native.asset.code.value,
                net_native=b.net_native.amount,
                rate_lock_id=lock.id,
                hold_id=hold.id,
                decision=json.dumps(decision.as_record(), default=str),
                needs_review=bool(screening.reasons),
                review_due_at=decision.review_due_at,
                requested_by=decision.requested_by,
                actor=actor,
                created_at=now,
                updated_at=now,
                fee_charge=network_fee_charge(self.policy, DecisionKind(kind.value)).value,
                flat_fee_usd=b.flat_fee_usd.amount,
                review_reasons=reasons_json(screening.reasons),
                approvals_required=screening.approvals_required,
                quote_id=quote_id,
            ),
            actor=actor,
            reason=said,
            now=now,
        )

    def cancel(
        self, conn: Connection, request_id: uuid.UUID, *, actor: str, reason: str
    ) -> PayoutRequest:
        """Withdraw a request before the coins leave; the hold is voided and the funds return."""
        now = self.clock.now(conn)
        store.move(conn, request_id, RequestStatus.CANCELLED, actor=actor, reason=reason, now=now)
        return store.get(conn, request_id)

    # -- operator review (kassa.payouts.review) --------------------------------------------

    def reprices(self, item: PayoutRequest) -> bool:
        """Will the approval that makes ``item`` approved price it again (`kassa.payouts.
        repricing`)? Only while it waits for review, under a policy whose ``pricing`` for its
        kind is ``at_approval`` (and the policy that decided it)."""
        if item.status is not RequestStatus.PENDING_REVIEW or item.policy != self.policy.name:
            return False
        if pricing_of(self.policy, DecisionKind(item.kind.value)) is not Pricing.AT_APPROVAL:
            return False  # the usual case: no stored decision to read
        return reprices(self.policy, decision_of(item.decision))

    def approval_locks(self, request_id: uuid.UUID) -> PayoutLocks | None:
        """The fresh rate locks and chain fee an approval of ``request_id`` re-prices it at, or
        None when its approval does not re-price it. Outside any transaction, like
        `lock_rates`; pass the result to `approve`."""
        with self.database.transaction() as conn:
            item = store.get(conn, request_id)
        if not self.reprices(item):
            return None
        return self.lock_rates(asset(item.asset), item.destination)

    def preview_repricing(self, item: PayoutRequest) -> Repricing | None:
        """What approving ``item`` now would commit, at the current market rate and the chain's
        fee now (no lock taken, nothing written); None when its approval does not re-price it,
        or no rate is available now. Outside any transaction."""
        if not self.reprices(item):
            return None
        coin = asset(item.asset)
        fee_asset = fee_asset_of(coin)
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
        try:
            rate = self._market_rate(coin, now)
            fee_rate = None if fee_asset == coin else self._market_rate(fee_asset, now)
        except NoRate:
            return None
        chain_fee = None if self.fee_quotes is None else self.fee_quotes.fee(coin, item.destination)
        fee = network_fee(self.settings, coin, fee_rate, quoted=chain_fee)
        return reprice(self.policy, decision_of(item.decision), rate, fee, now)

    def _market_rate(self, coin: Asset, now: datetime) -> RateFacts:
        """The ask rate a lock taken now would hold (`PricingService.lock`), without the lock."""
        sample = self.pricing.rate_at(symbol_of(coin.code), now)
        return RateFacts(asset=coin, usd_per_unit=sample.ask, source=",".join(sample.sources))

    def approve(
        self,
        conn: Connection,
        request_id: uuid.UUID,
        *,
        actor: str,
        note: str | None = None,
        locks: PayoutLocks | None = None,
    ) -> PayoutRequest:
        """One operator's approval; enough of them (from different operators) approve it.

        The approval that makes a request approved under ``pricing = "at_approval"`` prices it
        again at ``locks`` (`approval_locks`, taken before this transaction) and records the
        ``repriced`` entry of its history; a re-priced request the policy refuses refuses the
        approval (``payout_repricing_refused``) and nothing changes."""

        def before_approved(current: PayoutRequest, now: datetime) -> None:
            if not self.reprices(current):
                return
            committed = decision_of(current.decision)
            if locks is None:
                raise RuntimeError(
                    f"approving {current.id} re-prices it: take approval_locks() before the "
                    "approval's transaction and pass them"
                )
            coin = asset(current.asset)
            if locks.lock.asset != coin.code:
                raise RuntimeError(f"locks of {locks.lock.asset} cannot price a {coin} payout")
            priced = reprice(
                self.policy,
                committed,
                rate_facts(locks.lock, coin),
                self._locked_fee(coin, locks),
                now,
            )
            repricing.commit(conn, current, priced, actor=actor)

        return review.approve(
            conn,
            request_id,
            actor=actor,
            note=note,
            clock=self.clock,
            before_approved=before_approved,
        )

    def reject(
        self, conn: Connection, request_id: uuid.UUID, *, actor: str, reason: str
    ) -> PayoutRequest:
        """Refuse a request not yet signed; the hold is voided and the funds return."""
        return review.reject(conn, request_id, actor=actor, reason=reason, clock=self.clock)


def _to_wallet(decision: Decision) -> bool:
    return decision.breakdown.destination is Destination.ORIGINAL_WALLET


Refusal = RefundRefused | WithdrawalRefused | PayoutLimitExceeded

_REFUSALS: dict[str, type[Refusal]] = {
    RefundRefused.code: RefundRefused,
    WithdrawalRefused.code: WithdrawalRefused,
    PayoutLimitExceeded.code: PayoutLimitExceeded,
}


def _store_refusal(conn: Connection, claimed: idempotency.Claim, refused: Refusal) -> None:
    """Keep the refusal with what explains it (the decision, the limits) under the key."""
    detail = json.dumps({"summary": refused.detail, **refused.problem_extra()}, default=str)
    idempotency.complete(conn, claimed, refused.code, None, detail)
    refused.record()


def _replay(conn: Connection, stored: StoredOutcome) -> PayoutRequest:
    """The request a retried key created, or the refusal it got, explanation included."""
    refusal = _REFUSALS.get(stored.outcome)
    if refusal is not None:
        record = json.loads(stored.detail or "{}")
        raise refusal.from_record(str(record.get("summary", stored.outcome)), record)
    return store.get(conn, stored.resource_uuid)


def parse_payout_asset(code: str) -> Asset:
    coin = asset(code)
    if not on_chain(coin):
        raise AssetNotPayable(f"{code} is not paid out on a chain; use BTC, ETH, TRX or USDT")
    return coin
