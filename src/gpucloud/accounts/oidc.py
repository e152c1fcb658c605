"""`OidcClient`: the relying-party side of OpenID Connect's authorization-code flow with PKCE.

It reads the provider's discovery document (`<issuer>/.well-known/openid-configuration`, whose
`issuer` must be the configured one), builds the authorize URL (Authlib's OAuth 2 client: state,
nonce, S256 code challenge), exchanges the code for tokens at the token endpoint (client secret
and code verifier), and verifies the ID token against the provider's JWKS (joserfc): signature,
`iss`, `aud` (our client id; `azp` too when several audiences), `exp`, `nonce`. The discovery
document and the keys are cached for an hour; a token signed with a key not in the cached set
re-reads the set once (the provider rotated its keys). What a user may do is `accounts.sso`'s.

Every failure is an `SsoFailed` with a short reason that the callback hands to the dashboard
(`/?sso_error=<reason>`); provider responses are never echoed (they may hold tokens).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError as OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from gpucloud.errors import PermissionDenied
from gpucloud.settings import OidcSettings

log = logging.getLogger(__name__)
_CACHE_S = 3600.0
_LEEWAY_S = 60  # clock skew between us and the provider
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class SsoFailed(PermissionDenied):
    """A single sign-on that did not prove who the user is; `reason` is short and safe to show."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in."""

    subject: str
    email: str


class OidcClient:
    """See the module docstring."""

    def __init__(self, settings: OidcSettings) -> None:
        if not settings.enabled():
            raise ValueError("OIDC needs an issuer and a client id")
        self._settings = settings
        self._issuer = str(settings.issuer).rstrip("/")
        self._client_id = str(settings.client_id)
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    async def authorize_url(self, redirect_uri: str, *, state: str, nonce: str, verifier: str) -> str:
        endpoint = str((await self._discovery())["authorization_endpoint"])
        async with self._oauth(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, nonce=nonce, code_verifier=verifier
            )
        return str(url)

    async def identity(self, code: str, redirect_uri: str, *, verifier: str, nonce: str) -> Identity:
        """Redeem the code at the provider and verify the ID token it returns."""
        endpoint = str((await self._discovery())["token_endpoint"])
        try:
            async with self._oauth(redirect_uri) as client:
                token = await client.fetch_token(endpoint, code=code, code_verifier=verifier)
        except (OAuthError, httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("oidc: the token endpoint refused the code (%s)", type(exc).__name__)
            raise SsoFailed("provider_error", "The identity provider did not accept the sign-in.") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoFailed("invalid_id_token", "The identity provider returned no ID token.")
        return self._identity(await self._verify(id_token, nonce))

    def _oauth(self, redirect_uri: str) -> AsyncOAuth2Client:
        secret = self._settings.client_secret
        return AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=secret.get_secret_value() if secret else None,
            scope=" ".join(self._settings.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self._settings.timeout_s,
        )

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), algorithms=_ALGORITHMS)
            except JoseError:  # perhaps a key we have not seen yet: read the set again, once
                token = jwt.decode(id_token, await self._key_set(fresh=True), algorithms=_ALGORITHMS)
            claims: dict[str, Any] = dict(token.claims)
            self._registry(nonce).validate(claims)
        except (JoseError, ValueError) as exc:
            log.warning("oidc: ID token refused (%s)", exc)
            raise SsoFailed(
                "invalid_id_token", "The identity provider's ID token is not valid here."
            ) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self._client_id:
            raise SsoFailed("invalid_id_token", "The ID token was issued to another client.")
        return claims

    def _registry(self, nonce: str) -> JWTClaimsRegistry:
        return JWTClaimsRegistry(
            leeway=_LEEWAY_S,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )

    def _identity(self, claims: dict[str, Any]) -> Identity:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SsoFailed("no_email", "The identity provider did not share an email address.")
        if claims.get("email_verified") is False:
            raise SsoFailed("email_not_verified", "The email address is not verified at the provider.")
        email = email.strip().lower()
        allowed = self._settings.allowed_domains
        if allowed and email.rsplit("@", 1)[1] not in allowed:
            raise SsoFailed("domain_not_allowed", "This email domain may not sign in here.")
        return Identity(subject=str(claims["sub"]), email=email)

    async def _discovery(self) -> dict[str, Any]:
        if self._metadata is not None and time.monotonic() - self._metadata[0] < _CACHE_S:
            return self._metadata[1]
        document = await self._get_json(f"{self._issuer}/.well-known/openid-configuration")
        if str(document.get("issuer", "")).rstrip("/") != self._issuer:
            raise SsoFailed("provider_error", "The identity provider's discovery names another issuer.")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise SsoFailed("provider_error", f"The identity provider's discovery lacks {field}.")
        self._metadata = (time.monotonic(), document)
        return document

    async def _key_set(self, *, fresh: bool = False) -> KeySet:
        if not fresh and self._keys is not None and time.monotonic() - self._keys[0] < _CACHE_S:
            return self._keys[1]
        document = await self._get_json(str((await self._discovery())["jwks_uri"]))
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError):
            raise SsoFailed("provider_error", "The identity provider's keys are not readable.") from None
        self._keys = (time.monotonic(), keys)
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._settings.timeout_s) as client:
                response = await client.get(url, headers={"accept": "application/json"})
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("oidc: could not read %s (%s)", url, type(exc).__name__)
            raise SsoFailed("provider_unreachable", "The identity provider could not be reached.") from None
        if not isinstance(document, dict):
            raise SsoFailed("provider_error", "The identity provider answered with something unexpected.")
        return document
