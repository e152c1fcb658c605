"""`gpucloud users …`: manage users from the command line — notably the first platform admin of
a fresh install. Passwords are read from standard input, never from the command line (where
other users of the machine and the shell history would see them)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from gpucloud.accounts import UserService
    from gpucloud.db import Database

users_app = typer.Typer(help="Manage users who sign in to the management API.", no_args_is_help=True)

T = TypeVar("T")
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where embedded mode keeps its data.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (required).")
]


def _with_users(data_dir: Path | None, action: Callable[[UserService], Awaitable[T]]) -> T:
    # Imported here: the control plane's modules load only for the commands that use them.
    from gpucloud.accounts import UserService
    from gpucloud.cli.main import _with_db, load_settings
    from gpucloud.keycache import key_changes

    settings = load_settings(data_dir)

    async def run(db: Database) -> T:
        changes = key_changes(settings)  # a disable or a new password reaches every gateway at once
        try:
            return await action(UserService(db, changes))
        finally:
            await changes.close()

    return _with_db(settings, run)


def _read_password(password_stdin: bool) -> str:
    if not password_stdin:
        typer.echo("error: pass --password-stdin and the password on standard input", err=True)
        raise typer.Exit(2)
    return sys.stdin.readline().rstrip("\r\n")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The user's email; it signs in with it.")],
    password_stdin: PasswordStdin = False,
    admin: Annotated[bool, typer.Option("--admin", help="A platform admin (may do everything).")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user with the password read from standard input."""
    from gpucloud.accounts import NewUser

    password = _read_password(password_stdin)
    row = _with_users(data_dir, lambda users: users.create(NewUser(email, password, admin)))
    typer.echo(f"id:     {row.id}\nemail:  {row.email}\nadmin:  {'yes' if row.is_admin else 'no'}")


@users_app.command("list")
def users_list(data_dir: DataDir = None) -> None:
    """List users (never their passwords)."""
    for row in _with_users(data_dir, lambda users: users.list()):
        state = "disabled" if row.disabled_at else "active"
        typer.echo(f"{row.id}  {'admin' if row.is_admin else 'user':<5}  {state:<8}  {row.email}")


@users_app.command("disable")
def users_disable(user_id: str, data_dir: DataDir = None) -> None:
    """Disable a user: it cannot sign in, and its access tokens stop working."""
    row = _with_users(data_dir, lambda users: users.update(user_id, disabled=True))
    typer.echo(f"disabled {row.id} ({row.email})")


@users_app.command("enable")
def users_enable(user_id: str, data_dir: DataDir = None) -> None:
    """Enable a disabled user again."""
    row = _with_users(data_dir, lambda users: users.update(user_id, disabled=False))
    typer.echo(f"enabled {row.id} ({row.email})")


@users_app.command("reset-password")
def users_reset_password(
    user_id: str, password_stdin: PasswordStdin = False, data_dir: DataDir = None
) -> None:
    """Set a new password (read from standard input); the user's access tokens stop working."""
    password = _read_password(password_stdin)
    row = _with_users(data_dir, lambda users: users.reset_password(user_id, password))
    typer.echo(f"password reset for {row.id} ({row.email})")


@users_app.command("delete")
def users_delete(user_id: str, data_dir: DataDir = None) -> None:
    """Delete a user."""
    _with_users(data_dir, lambda users: users.delete(user_id))
    typer.echo(f"deleted {user_id}")
