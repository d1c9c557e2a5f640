"""JWT bearer tokens from an identity provider: verified here, no identity database needed.

Accepted: HS256 signed with ``settings.jwt_hs256_secret``, and RS256/ES256 signed by a key of the
JWKS file ``settings.jwt_jwks_file`` (chosen by the token's ``kid``; a file with one key needs no
``kid``). Each algorithm takes only its own kind of key, so a public key can never serve as an HMAC
secret, and ``alg: none`` is refused. ``exp`` is required; ``nbf`` and ``iat`` are checked when
present, ``iss`` and ``aud`` against their settings (a token carrying an ``aud`` is refused unless
``settings.jwt_audience`` names it), all with ``settings.jwt_leeway_seconds`` of clock skew.

Claims, as README.md documents them:

- user id: ``user_id`` (integer), else ``sub`` when it is a string of digits;
- username: ``preferred_username``, else ``username``;
- email: ``email`` (optional);
- privilege: ``groups``, CVAT's groups of the user (the highest of admin, user, worker; none when
  it holds none of them, as in CVAT), else ``privilege`` (``admin``, ``user`` or ``worker``),
  else ``is_admin: true`` for admin, else ``user``;
- organizations: ``orgs``, a list of ``{"id": <int>, "slug": <str>, "role": <org role>}``. The org
  context of a JWT caller is decided from this list alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Final

import jwt
import msgspec

from eventpipe.identity import Membership, Org, OrgRole, Privilege, User, privilege_of
from eventpipe.settings import AuthSettings, SettingsError

_JWKS_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
_USER_ID = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class InvalidJwtError(Exception):
    """Why a token is refused, in words safe to send back to the client."""


class OrgClaim(msgspec.Struct, frozen=True):
    id: _USER_ID
    slug: str
    role: OrgRole


class JwtClaims(msgspec.Struct, frozen=True):
    """The claims this service reads; others are ignored."""

    sub: str | None = None  # PyJWT already refuses a sub that is not a string (RFC 7519)
    user_id: _USER_ID | None = None
    preferred_username: str | None = None
    username: str | None = None
    email: str | None = None
    groups: list[str] | None = None
    privilege: Privilege | None = None
    is_admin: bool = False
    orgs: list[OrgClaim] = msgspec.field(default_factory=list)

    def to_user(self) -> User:
        user_id = self.user_id if self.user_id is not None else _numeric_id(self.sub)
        if user_id is None:
            raise InvalidJwtError(
                "the bearer token names no numeric user: set the user_id claim or a numeric sub"
            )
        username = self.preferred_username or self.username
        if not username:
            raise InvalidJwtError(
                "the bearer token names no username: set preferred_username or username"
            )
        privilege: Privilege | None = (
            privilege_of(self.groups)
            if self.groups is not None
            else self.privilege or ("admin" if self.is_admin else "user")
        )
        memberships = tuple(Membership(Org(o.id, o.slug), o.role) for o in self.orgs)
        return User(user_id, username, self.email, privilege, memberships)


def _numeric_id(sub: str | None) -> int | None:
    # 19 digits bound the int() conversion and cover every int64.
    if sub is None or not (sub.isascii() and sub.isdigit() and len(sub) <= 19):
        return None
    return int(sub) if int(sub) < 2**63 else None


# PyJWT's refusals, in the words the client gets; anything else is "malformed".
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "the bearer token has expired (exp)"),
    (jwt.ImmatureSignatureError, "the bearer token is not valid yet (nbf or iat)"),
    (jwt.InvalidAudienceError, "the bearer token is not meant for this service (aud)"),
    (jwt.InvalidIssuerError, "the bearer token comes from an untrusted issuer (iss)"),
    (jwt.InvalidSignatureError, "the bearer token's signature is invalid"),
)


class JwtVerifier:
    def __init__(
        self,
        *,
        hs256_secret: str = "",
        jwks: jwt.PyJWKSet | None = None,
        issuer: str = "",
        audience: str = "",
        leeway_seconds: float = 0.0,
    ) -> None:
        self._secret = hs256_secret
        self._jwks = jwks
        self._issuer = issuer or None
        self._audience = audience or None
        self._leeway = leeway_seconds

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> JwtVerifier | None:
        """The verifier the settings configure, or None when JWTs are not enabled."""
        if not settings.jwt_hs256_secret and not settings.jwt_jwks_file:
            return None
        jwks = None
        if settings.jwt_jwks_file:
            try:
                jwks = jwt.PyJWKSet.from_json(Path(settings.jwt_jwks_file).read_text())
            except (OSError, jwt.PyJWTError, ValueError) as exc:
                raise SettingsError(
                    f"EVENTPIPE_JWT_JWKS_FILE={settings.jwt_jwks_file!r} is not a readable JWKS "
                    f"file: {exc}"
                ) from None
        return cls(
            hs256_secret=settings.jwt_hs256_secret,
            jwks=jwks,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
        )

    def verify(self, token: str) -> tuple[User, float]:
        """The user the token proves and the seconds it stays valid, or :class:`InvalidJwtError`."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._key_for(header)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[header["alg"]],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidJwtError(f"the bearer token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), None)
            raise InvalidJwtError(reason or "the bearer token is not a well-formed JWT") from None
        try:
            user = msgspec.convert(claims, JwtClaims).to_user()
        except msgspec.ValidationError as exc:
            raise InvalidJwtError(f"the bearer token's claims are unusable: {exc}") from None
        return user, float(claims["exp"]) - time.time()

    def _key_for(self, header: dict[str, object]) -> str | jwt.PyJWK:
        alg = header.get("alg")
        if alg == "HS256" and self._secret:
            return self._secret
        if alg in _JWKS_ALGORITHMS and self._jwks is not None:
            kid = header.get("kid")
            keys = self._jwks.keys
            if isinstance(kid, str):
                keys = [k for k in keys if k.key_id == kid]
            elif len(keys) != 1:
                raise InvalidJwtError("the bearer token names no key (kid)")
            if len(keys) != 1 or keys[0].algorithm_name != alg:
                raise InvalidJwtError(f"no {alg} key with id {kid!r} is trusted")
            return keys[0]
        raise InvalidJwtError(f"bearer tokens signed with {alg!r} are not accepted")


def looks_like_jwt(credentials: str) -> bool:
    """A compact JWS has three dot-separated parts; API tokens have no dots."""
    return credentials.count(".") == 2
