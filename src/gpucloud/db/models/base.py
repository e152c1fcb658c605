"""Column types and the declarative base every table shares: times are aware UTC on every
database (`UTCDateTime`), ids are prefixed random strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime that is always aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


DEFAULT_ORG_ID = "org_default"  # created by migration 0010; owns the keys made without an org


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    def column_values(self) -> dict[str, Any]:
        """The row's column values, for a Core INSERT (writes skip the ORM unit of work)."""
        return {
            c.key: getattr(self, c.key) for c in self.__table__.columns if getattr(self, c.key) is not None
        }

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }
