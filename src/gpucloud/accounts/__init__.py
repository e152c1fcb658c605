"""Accounts: users who sign in to the management API with an email and a password.

`users` stores them, `passwords` hashes passwords (argon2id), `tokens` issues and checks the
short-lived access tokens (HS256 JWTs), `throttle` slows down password guessing, and `service`
puts these together for the gateway. API keys (`gpucloud.keys`) stay the only credential of the
`/v1` inference routes; access tokens are accepted on `/api` routes only.
"""

from gpucloud.accounts.service import Accounts, TokenGrant
from gpucloud.accounts.users import NewUser, UserService

__all__ = ["Accounts", "NewUser", "TokenGrant", "UserService"]
