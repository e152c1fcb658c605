"""How a user row is shown (gateway/routes/user_views.py): never the password hash or token version."""

from __future__ import annotations

from datetime import UTC, datetime

from gpucloud.db import User
from gpucloud.gateway.routes.user_views import user_view
from gpucloud.gateway.views.accounts import UserView

AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


def test_the_view_leaves_secrets_out_and_matches_its_model() -> None:
    row = User(
        id="usr_1",
        email="a@example.com",
        password_hash="$argon2id$secret",
        is_admin=False,
        created_at=AT,
        disabled_at=None,
        password_changed_at=AT,
        token_version=7,
    )
    view = user_view(row)
    assert view == {
        "id": "usr_1",
        "object": "user",
        "email": "a@example.com",
        "is_admin": False,
        "created_at": "2026-11-29T12:00:00+00:00",
        "disabled_at": None,
        "password_changed_at": "2026-11-29T12:00:00+00:00",
    }
    assert "argon2" not in str(view)
    UserView.model_validate(view)
