"""Loading policies: presets shipped as package data, files, overrides, and clear errors."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from kassa.errors import KassaError
from kassa.money import USD, AssetCode, Money
from kassa.policy import (
    InvalidPolicy,
    Policy,
    load_policy,
    load_preset,
    parse_policy,
    preset_names,
    with_overrides,
)

PRESETS = ("activkode", "codegateway", "codexkey", "default", "ticketed-hosting")


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(exc: pytest.ExceptionInfo[InvalidPolicy]) -> tuple[str, ...]:
    return exc.value.problems


# --------------------------------------------------------------------------- presets


def test_the_five_presets_ship_as_package_data() -> None:
    folder = resources.files("kassa.policy").joinpath("presets")
    assert preset_names() == PRESETS
    for name in PRESETS:
        assert folder.joinpath(f"{name}.toml").is_file()


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_loads_under_its_own_name(name: str) -> None:
    policy = load_preset(name)
    assert policy.name == name
    assert policy.source


def _unset_fields(model: BaseModel, where: str) -> list[str]:
    missing = [
        f"{where}{key}" for key in type(model).model_fields if key not in model.model_fields_set
    ]
    for key in model.model_fields_set:
        value = getattr(model, key)
        if isinstance(value, BaseModel):
            missing += _unset_fields(value, f"{where}{key}.")
    return missing


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_spells_out_every_parameter(name: str) -> None:
    """A reader of a preset never has to know the model's defaults (clauses aside)."""
    policy = load_preset(name)
    unset = [key for key in _unset_fields(policy, "") if not key.endswith("clauses")]
    assert unset == []


def test_the_default_preset_equals_the_model_defaults() -> None:
    """The model's defaults are the product's own policy, so docs and code cannot drift."""
    preset = load_preset("default")
    bare = Policy()
    assert preset.refund.model_dump(exclude={"clauses"}) == bare.refund.model_dump(
        exclude={"clauses"}
    )
    assert preset.withdrawal.model_dump(exclude={"clauses"}) == bare.withdrawal.model_dump(
        exclude={"clauses"}
    )
    assert preset.activations.model_dump(exclude={"clauses"}) == bare.activations.model_dump(
        exclude={"clauses"}
    )


def test_unknown_preset() -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_preset("stripe")
    assert exc.value.code == "invalid_policy"
    assert isinstance(exc.value, KassaError)
    assert "unknown policy preset 'stripe'" in exc.value.detail
    assert "activkode, codegateway, codexkey, default, ticketed-hosting" in exc.value.detail


# --------------------------------------------------------------------------- files


def test_a_whole_policy_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
name = "shop"
[refund]
window_days = 30
minimum = "2.50"
[withdrawal]
assets = ["BTC"]
[calendar]
holidays = [2026-12-25, 2026-01-01]
""",
    )
    policy = load_policy(path)

    assert policy.name == "shop"
    assert policy.refund.window_days == 30
    assert policy.refund.minimum == usd("2.50")
    assert policy.withdrawal.assets == (AssetCode.BTC,)
    assert policy.calendar.holidays == (date(2026, 1, 1), date(2026, 12, 25))
    # Everything unsaid is the product default.
    assert policy.withdrawal.flat_fee == usd("5.00")


def test_a_deployment_extends_a_preset_and_overrides_some_parameters(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
extends = "activkode"
name = "activkode-eu"
[withdrawal]
minimum = "25.00"
[calendar]
holidays = [2026-05-01]
""",
    )
    policy = load_policy(path)
    preset = load_preset("activkode")

    assert policy.name == "activkode-eu"
    assert policy.withdrawal.minimum == usd("25.00")
    assert policy.withdrawal.flat_fee == preset.withdrawal.flat_fee
    assert policy.withdrawal.clauses == preset.withdrawal.clauses
    assert policy.account_states == preset.account_states
    assert policy.holidays == frozenset({date(2026, 5, 1)})


def test_extends_an_unknown_preset(tmp_path: Path) -> None:
    path = write(tmp_path, 'extends = "nope"\n')
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(path)
    assert str(path) in exc.value.detail
    assert "extends: unknown preset 'nope'" in exc.value.detail


def test_unknown_key_names_the_file_the_key_and_the_known_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "[refund]\nwindow_dayz = 14\n")
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(path)

    assert exc.value.detail.startswith(f"policy file {path} is invalid: ")
    (problem,) = problems_of(exc)
    assert problem.startswith("refund.window_dayz: unknown key (known keys: enabled, window_days,")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, "refunds = 1\n"))
    assert problems_of(exc)[0].startswith("refunds: unknown key (known keys: name, title,")


def test_wrong_type_is_refused_not_coerced(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[refund]\nwindow_days = "14"\none_per_topup = 1\n'))
    assert problems_of(exc) == (
        "refund.window_days: Input should be a valid integer (got '14')",
        "refund.one_per_topup: Input should be a valid boolean (got 1)",
    )


def test_money_as_a_toml_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, "[withdrawal]\nminimum = 20.5\n"))
    (problem,) = problems_of(exc)
    assert problem.startswith(
        'withdrawal.minimum: expected a USD amount as a decimal string such as "20.00"'
    )


def test_negative_money(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[withdrawal]\nflat_fee = "-5.00"\n'))
    assert problems_of(exc) == (
        "withdrawal.flat_fee: invalid USD amount '-5.00': negative amounts not allowed",
    )


def test_money_finer_than_a_micro_dollar(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[refund]\nminimum = "1.0000001"\n'))
    assert "USD allows at most 6 decimal places" in problems_of(exc)[0]


def test_bad_asset(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[withdrawal]\nassets = ["BTC", "DOGE"]\n'))
    (problem,) = problems_of(exc)
    assert problem == (
        "withdrawal.assets[1]: unknown asset 'DOGE'; use one of BTC, ETH, TRX, USDT-ERC20, "
        "USDT-TRC20"
    )


def test_usd_is_not_a_withdrawal_asset(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[withdrawal]\nassets = ["USD"]\n'))
    assert problems_of(exc) == (
        "withdrawal.assets[0]: USD is the ledger currency, not an asset a withdrawal can pay in",
    )


def test_an_asset_listed_twice(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[withdrawal]\nassets = ["BTC", "BTC"]\n'))
    assert problems_of(exc) == ("withdrawal.assets: BTC is listed twice",)


def test_bad_enum_value(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[withdrawal]\nnetwork_fee = "split"\n'))
    assert problems_of(exc) == (
        "withdrawal.network_fee: Input should be 'deduct', 'beyond_flat_fee' or 'house' "
        "(got 'split')",
    )


def test_unknown_clause_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[refund.clauses]\nrefund_windw = "14 days"\n'))
    (problem,) = problems_of(exc)
    assert problem.startswith("refund.clauses.refund_windw: Input should be 'refunds_enabled',")


def test_a_bad_account_state_entry_is_named_by_its_index(tmp_path: Path) -> None:
    text = """
[[account_states]]
state = "frozen"
refund = false
withdrawal = false
clause = "x"

[[account_states]]
state = "suspended"
reason = "bad_manners"
refund = true
clause = "y"
"""
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, text))
    problems = problems_of(exc)
    assert problems[0].startswith("account_states[1].reason: Input should be 'violation',")
    assert problems[1] == "account_states[1].withdrawal: required key is missing"


def test_active_is_not_an_account_state_effect(tmp_path: Path) -> None:
    text = '[[account_states]]\nstate = "active"\nrefund = true\nwithdrawal = true\nclause = "x"\n'
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, text))
    assert problems_of(exc) == (
        "account_states[0].state: active accounts follow the other rules; list only other states",
    )


def test_an_account_state_entry_that_can_never_match(tmp_path: Path) -> None:
    text = """
[[account_states]]
state = "suspended"
refund = true
withdrawal = true
clause = "any suspension"

[[account_states]]
state = "suspended"
reason = "violation"
refund = false
withdrawal = false
clause = "never reached"
"""
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, text))
    (problem,) = problems_of(exc)
    assert problem.startswith(
        "account_states: entry 1 (suspended, reason 'violation') can never match: entry 0"
    )


def test_rules_that_can_never_be_waived(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, '[refund]\noperator_may_waive = ["net_positive"]\n'))
    assert problems_of(exc) == (
        "refund.operator_may_waive: these rules can never be waived: net_positive",
    )


def test_enabled_withdrawals_need_an_asset(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, "[withdrawal]\nassets = []\n"))
    assert problems_of(exc) == ("withdrawal: withdrawals are enabled but 'assets' is empty",)


def test_bad_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, 'name = "My Shop"\n'))
    assert problems_of(exc)[0].startswith("name: use 1-63 characters")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = '[refund]\nwindow_days = 0\nminimum = "-1"\n[withdrawal]\nflat_fee = 5\n'
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(write(tmp_path, text))
    assert [p.split(":")[0] for p in problems_of(exc)] == [
        "refund.window_days",
        "refund.minimum",
        "withdrawal.flat_fee",
    ]


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[refund\n")
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(path)
    assert exc.value.detail.startswith(f"policy file {path} is not valid TOML: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(InvalidPolicy) as exc:
        load_policy(path)
    assert exc.value.detail == f"policy file {path} cannot be read: No such file or directory"


def test_presets_may_not_extend() -> None:
    """``extends`` belongs to deployment files; parse_policy accepts it, the model does not."""
    with pytest.raises(InvalidPolicy) as exc:
        parse_policy('extends = "default"\nextends_too = 1\n', source="inline")
    assert exc.value.detail.startswith("inline is invalid: extends_too: unknown key")


# --------------------------------------------------------------------------- overrides


def test_overrides_merge_tables_key_by_key() -> None:
    base = load_preset("codexkey")
    policy = with_overrides(base, {"refund": {"window_days": 30, "minimum": "1.00"}})

    assert policy.refund.window_days == 30
    assert policy.refund.minimum == usd("1.00")
    assert policy.refund.review_sla_business_days == 5  # untouched
    assert policy.refund.clauses == base.refund.clauses
    assert base.refund.window_days == 14  # the original is unchanged


@pytest.mark.parametrize("off", [None, "none"])
def test_overrides_switch_an_optional_limit_off(off: object) -> None:
    policy = with_overrides(load_preset("codexkey"), {"refund": {"window_days": off}})
    assert policy.refund.window_days is None


def test_overrides_replace_lists() -> None:
    policy = with_overrides(load_preset("activkode"), {"withdrawal": {"assets": ["BTC"]}})
    assert policy.withdrawal.assets == (AssetCode.BTC,)


def test_overrides_accept_money_values() -> None:
    policy = with_overrides(load_preset("default"), {"withdrawal": {"flat_fee": usd("3.00")}})
    assert policy.withdrawal.flat_fee == usd("3.00")


def test_bad_overrides_name_the_policy_and_the_key() -> None:
    with pytest.raises(InvalidPolicy) as exc:
        with_overrides(load_preset("default"), {"withdrawal": {"minimun": "1.00"}})
    assert exc.value.detail.startswith(
        "overrides of policy 'default' is invalid: withdrawal.minimun: unknown key"
    )


def test_overrides_must_be_a_table() -> None:
    with pytest.raises(InvalidPolicy):
        with_overrides(load_preset("default"), ["refund"])  # type: ignore[arg-type]


def test_a_policy_is_frozen() -> None:
    policy = load_preset("default")
    with pytest.raises(ValidationError):
        policy.name = "changed"
