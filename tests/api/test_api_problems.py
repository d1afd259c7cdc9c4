"""The one error table: every domain error code the API can meet has a deliberate status."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import kassa
from kassa import errors, money
from kassa.accounts import errors as account_errors
from kassa.api import errors as api_errors
from kassa.api.problems import STATUS_BY_CODE, status_for
from kassa.apikeys import errors as key_errors
from kassa.errors import Conflict, InvalidRequest, KassaError, NotFound
from kassa.ledger import errors as ledger_errors

MODULES = (errors, ledger_errors, account_errors, key_errors, api_errors)


def _codes(module: ModuleType, base: type[KassaError] | type[money.MoneyError]) -> set[str]:
    return {
        str(cls.code)
        for _name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, base) and cls.__module__ == module.__name__
    }


def _all_error_classes() -> set[type[KassaError]]:
    """Every KassaError subclass anywhere in the kassa package (each module imported)."""
    for info in pkgutil.walk_packages(kassa.__path__, "kassa."):
        if ".migrations" not in info.name and not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: set[type[KassaError]] = set()
    todo: list[type[KassaError]] = [KassaError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_error_code_in_the_package_is_in_the_table() -> None:
    missing = {cls.code for cls in _all_error_classes()} - STATUS_BY_CODE.keys()
    assert not missing, f"add these codes to kassa.api.problems.STATUS_BY_CODE: {missing}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_domain_error_code_is_in_the_table(module: ModuleType) -> None:
    missing = _codes(module, KassaError) - STATUS_BY_CODE.keys()
    assert not missing, f"add these codes to kassa.api.problems.STATUS_BY_CODE: {missing}"


def test_every_money_error_code_is_in_the_table() -> None:
    assert _codes(money, money.MoneyError) <= STATUS_BY_CODE.keys()


def test_policy_for_the_main_refusals() -> None:
    assert STATUS_BY_CODE["insufficient_funds"] == 409
    assert STATUS_BY_CODE["idempotency_key_reused"] == 409
    assert STATUS_BY_CODE["hold_expired"] == 409
    assert STATUS_BY_CODE["account_not_found"] == 404
    assert STATUS_BY_CODE["invalid_amount"] == 422
    assert STATUS_BY_CODE["idempotency_key_required"] == 400


def test_unlisted_codes_fall_back_on_their_base_class() -> None:
    class NewMissing(NotFound):
        code = "brand_new_missing"

    class NewConflict(Conflict):
        code = "brand_new_conflict"

    class NewInvalid(InvalidRequest):
        code = "brand_new_invalid"

    class NewBug(KassaError):
        code = "brand_new_bug"

    assert [status_for(e("x")) for e in (NewMissing, NewConflict, NewInvalid, NewBug)] == [
        404,
        409,
        422,
        500,
    ]
