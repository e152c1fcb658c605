"""A real OpenID Connect provider for the single sign-on tests, on a loopback port.

A small Starlette app served by uvicorn in a thread: discovery, JWKS (an RSA key made at start),
an authorize endpoint that approves the configured test user at once (as a provider does once
its user has signed in) and redirects back with a code, and a token endpoint that checks the
client's secret (HTTP Basic), the redirect URI and the PKCE verifier (S256) and returns an RS256
ID token signed with joserfc carrying the nonce. Codes are good once. What the tests vary — the
user's email, the audience the token is issued to, an error at the authorize step — are
attributes they set between sign-ins.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support import SECRETS, free_port


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    email: str


@dataclass
class OidcProvider:
    client_id: str = "gpucloud-test"
    client_secret: str = field(default_factory=lambda: "oidc-secret-" + secrets.token_hex(12))
    email: str = "ada@example.com"
    email_verified: bool = True
    audience: str | None = None  # None: the client id
    authorize_error: str | None = None
    port: int = field(default_factory=free_port)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens_issued: int = 0
    _key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-1"}))
    _server: uvicorn.Server | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OidcProvider:
        SECRETS.add(self.client_secret)
        routes = [
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
            Route("/authorize", self._authorize),
            Route("/token", self._token, methods=["POST"]),
        ]
        config = uvicorn.Config(
            Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test OIDC provider did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self._key.as_dict(private=False)]})

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("nonce"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        redirect_uri = q["redirect_uri"]
        if self.authorize_error:
            query = {"error": self.authorize_error, "state": q.get("state", "")}
            return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", status_code=302)
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(q["client_id"], redirect_uri, q["nonce"], q["code_challenge"], self.email)
        query = {"code": code, "state": q.get("state", "")}
        return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", status_code=302)

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if not self._client_ok(request.headers.get("authorization", "")):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code", "")), None)  # a code is good once
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant.challenge or form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.tokens_issued += 1
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self._id_token(grant),
            }
        )

    def _client_ok(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        return client_id == self.client_id and secret == self.client_secret

    def _id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "sub-" + hashlib.sha256(grant.email.encode()).hexdigest()[:16],
            "aud": self.audience or grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "email": grant.email,
            "email_verified": self.email_verified,
        }
        return jwt.encode({"alg": "RS256", "kid": "test-1"}, claims, self._key)
