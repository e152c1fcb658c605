"""The response models' base (gateway/views/base.py): exact fields, and `documented`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gpucloud.gateway.views.base import View, documented


class Thing(View):
    id: str


def test_a_view_refuses_fields_it_does_not_declare() -> None:
    assert Thing(id="a").id == "a"
    with pytest.raises(ValidationError, match="extra"):
        Thing.model_validate({"id": "a", "secret": "x"})


def test_documented_names_the_model_per_status() -> None:
    assert documented(Thing) == {200: {"model": Thing}}
    assert documented(Thing, 201, "made") == {201: {"model": Thing, "description": "made"}}
