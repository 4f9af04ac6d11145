from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import jwt

from taskfarm.domain import TokenClaims

#: A token is a few short claims; anything much longer is not one of ours.
MAX_TOKEN_LENGTH = 1024
_ALGORITHM = "HS256"


class JwtSigner:
    """HMAC-SHA256 JSON Web Tokens (PyJWT). Only HS256 is accepted: `alg: none` and every
    other algorithm are refused, and so is any token without an expiry."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, claims: TokenClaims) -> str:
        payload = {"sub": claims.username, "stamp": claims.stamp, "exp": claims.expires}
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM)

    def read(self, token: str, now: dt.datetime) -> TokenClaims | None:
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "sub", "stamp"], "verify_exp": False},
            )
        except jwt.InvalidTokenError:
            return None
        # Expiry is checked against our clock, not PyJWT's, so that tests can move time.
        if not isinstance(claims["exp"], int) or claims["exp"] <= now.timestamp():
            return None
        if not isinstance(claims["sub"], str) or not isinstance(claims["stamp"], str):
            return None
        expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
        return TokenClaims(claims["sub"], claims["stamp"], expires)

    def mac(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()
