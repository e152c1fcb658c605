"""How a user row is shown by the API: never the password hash, never the token version."""

from __future__ import annotations

from gpucloud.db import User


def user_view(row: User) -> dict[str, object]:
    return {
        "id": row.id,
        "object": "user",
        "email": row.email,
        "is_admin": row.is_admin,
        "created_at": row.created_at.isoformat(),
        "disabled_at": row.disabled_at.isoformat() if row.disabled_at else None,
        "password_changed_at": row.password_changed_at.isoformat() if row.password_changed_at else None,
    }
