"""`Principal`: built from a key row (with its organisation's limits), admin by role, and
model access deny-by-list; `OrgLimits` is None when an organisation sets no limit."""

from __future__ import annotations

from types import SimpleNamespace

from gpucloud.db import ApiKey
from gpucloud.keys.principal import EDITABLE, OrgLimits, Principal
from gpucloud.queue.protocol import Priority


def _row(**fields: object) -> ApiKey:
    values: dict[str, object] = {
        "id": "key_1",
        "name": "k",
        "role": "user",
        "allowed_models": None,
        "default_priority": "normal",
        "max_priority": "high",
        "rpm_limit": 5,
        "org_id": "org_a",
    }
    return ApiKey(**(values | fields))


def test_a_principal_takes_the_rows_fields() -> None:
    principal = Principal.of(_row(allowed_models=["m1", "m2"]))
    assert principal.key_id == "key_1"
    assert principal.allowed_models == ("m1", "m2")
    assert principal.default_priority is Priority.NORMAL
    assert principal.max_priority is Priority.HIGH
    assert principal.rpm_limit == 5
    assert principal.org_id == "org_a"
    assert principal.org_limits is None  # an ORM row has no org_* columns
    assert not principal.is_admin
    assert Principal.of(_row(role="admin")).is_admin


def test_model_access_is_every_model_without_a_list_and_only_listed_ones_with_one() -> None:
    assert Principal.of(_row()).may_use("anything")
    listed = Principal.of(_row(allowed_models=["m1"]))
    assert listed.may_use("m1")
    assert not listed.may_use("m2")
    assert not Principal.of(_row(allowed_models=[])).may_use("m1")


def test_org_limits_are_read_from_the_joined_columns() -> None:
    none_set = SimpleNamespace(
        org_rpm_limit=None, org_tpm_limit=None, org_token_quota=None, org_budget_micros=None
    )
    assert OrgLimits.of(none_set) is None
    period_only = SimpleNamespace(org_budget_period="daily")
    assert OrgLimits.of(period_only) is None  # a period without a budget limits nothing
    some = SimpleNamespace(org_tpm_limit=1000, org_budget_micros=5, org_budget_period="monthly")
    assert OrgLimits.of(some) == OrgLimits(None, 1000, None, 5, "monthly")


def test_the_editable_fields_are_columns_and_exclude_identity() -> None:
    columns = set(ApiKey.__table__.columns.keys())
    assert columns >= EDITABLE
    assert not EDITABLE & {"id", "digest", "prefix", "role", "org_id", "revoked_at", "created_at"}
