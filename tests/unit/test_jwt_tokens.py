"""JWT bearer tokens: every way a token can be wrong is refused with a reason; good tokens map
their claims to a user with memberships; Bearer values that are not JWTs stay API tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eventpipe.identity import IdentityStore, Membership, Org
from eventpipe.settings import Settings, SettingsError
from ingest_gateway.errors import ApiError
from ingest_gateway.identity.authentication import Authenticator
from ingest_gateway.identity.jwt_tokens import InvalidJwtError, JwtVerifier, looks_like_jwt
from ingest_gateway.identity.org_context import OrgResolver
from ingest_gateway.identity.org_selection import OrgSelector

SECRET = "s" * 32
ISSUER = "https://idp.example"
AUDIENCE = "eventpipe"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "42",
        "preferred_username": "carol",
        "email": "carol@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "orgs": [{"id": 7, "slug": "acme", "role": "supervisor"}],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), SECRET, algorithm="HS256")


def jwk(public_key: Any, kid: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
    return {**algorithm.to_jwk(public_key, as_dict=True), "kid": kid}


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    keys = [jwk(RSA_KEY.public_key(), "rsa-1"), jwk(EC_KEY.public_key(), "ec-1")]
    path.write_text(json.dumps({"keys": keys}))
    return path


@pytest.fixture
def verifier(jwks_file: Path) -> JwtVerifier:
    settings = Settings(
        jwt_hs256_secret=SECRET,
        jwt_jwks_file=str(jwks_file),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_leeway_seconds=0,
    )
    made = JwtVerifier.from_settings(settings)
    assert made is not None
    return made


def test_good_tokens_of_every_algorithm_map_their_claims(verifier: JwtVerifier) -> None:
    tokens = [
        hs256(),
        jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}),
        jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"}),
    ]
    for token in tokens:
        user, valid_seconds = verifier.verify(token)
        assert (user.id, user.username, user.email, user.privilege) == (
            42,
            "carol",
            "carol@example.com",
            "user",
        )
        assert user.memberships == (Membership(Org(7, "acme"), "supervisor"),)
        assert 590 < valid_seconds <= 600


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"user_id": 5, "sub": "user-uuid"}, (5, "carol", "user")),
        ({"sub": "9", "preferred_username": None, "username": "dave"}, (9, "dave", "user")),
        ({"is_admin": True}, (42, "carol", "admin")),
        ({"privilege": "worker", "is_admin": True}, (42, "carol", "worker")),
        ({"orgs": None}, (42, "carol", "user")),
        # CVAT's groups: the highest of them, none without any, and they win over the rest.
        ({"groups": ["worker", "user"], "privilege": "admin"}, (42, "carol", "user")),
        ({"groups": ["annotators"], "is_admin": True}, (42, "carol", None)),
        ({"groups": []}, (42, "carol", None)),
    ],
)
def test_claim_mapping(
    verifier: JwtVerifier, overrides: dict[str, Any], expected: tuple[int, str, str | None]
) -> None:
    user, _ = verifier.verify(hs256(**overrides))
    assert (user.id, user.username, user.privilege) == expected
    assert user.memberships is not None


def forged_none() -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims())}."


def hs256_with_public_key() -> str:
    # The classic confusion: an HMAC "signed" with the RSA public key the JWKS publishes.
    payload = ".".join(
        base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()
        for v in ({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims())
    )
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = hmac.new(pem, payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


REFUSED: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: hs256(exp=int(time.time()) - 5), "has expired"),
    "not yet valid": (lambda: hs256(nbf=int(time.time()) + 60), "not valid yet"),
    "issued in the future": (lambda: hs256(iat=int(time.time()) + 60), "not valid yet"),
    "no exp": (lambda: jwt.encode({**claims(), "exp": None}, SECRET), "lacks the exp claim"),
    "wrong secret": (lambda: jwt.encode(claims(), "x" * 32, algorithm="HS256"), "signature"),
    "wrong rsa key": (
        lambda: jwt.encode(claims(), OTHER_RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}),
        "signature",
    ),
    "unknown kid": (
        lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "nope"}),
        "no RS256 key with id 'nope'",
    ),
    "ec key named for RS256": (
        lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "ec-1"}),
        "no RS256 key",
    ),
    "no kid with several keys": (
        lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256"),
        "names no key",
    ),
    "wrong audience": (lambda: hs256(aud="other-service"), "not meant for this service"),
    "no audience": (lambda: hs256(aud=None), "lacks the aud claim"),
    "wrong issuer": (lambda: hs256(iss="https://evil.example"), "untrusted issuer"),
    "alg none": (forged_none, "'none' are not accepted"),
    "HS512": (lambda: jwt.encode(claims(), SECRET * 2, algorithm="HS512"), "'HS512'"),
    "hs256 with the public key": (hs256_with_public_key, "signature"),
    "garbage": (lambda: "a.b.c", "not a well-formed JWT"),
    "non-numeric user": (lambda: hs256(sub="user-uuid"), "no numeric user"),
    "huge user id": (lambda: hs256(sub="9" * 30), "no numeric user"),
    "negative user id": (lambda: hs256(user_id=-1), "claims are unusable"),
    "no username": (lambda: hs256(preferred_username=None), "names no username"),
    "bad org role": (
        lambda: hs256(orgs=[{"id": 1, "slug": "a", "role": "king"}]),
        "claims are unusable",
    ),
}


@pytest.mark.parametrize("case", REFUSED.keys())
def test_bad_tokens_are_refused_with_a_reason(verifier: JwtVerifier, case: str) -> None:
    make, words = REFUSED[case]
    with pytest.raises(InvalidJwtError, match=words):
        verifier.verify(make())


def test_a_token_with_an_audience_needs_one_configured() -> None:
    verifier = JwtVerifier(hs256_secret=SECRET, issuer=ISSUER)
    with pytest.raises(InvalidJwtError, match="not meant for this service"):
        verifier.verify(hs256())
    assert verifier.verify(hs256(aud=None))[0].username == "carol"


def test_jwt_settings(tmp_path: Path) -> None:
    assert JwtVerifier.from_settings(Settings()) is None
    missing = Settings(jwt_jwks_file=str(tmp_path / "missing.json"))
    with pytest.raises(SettingsError, match="EVENTPIPE_JWT_JWKS_FILE"):
        JwtVerifier.from_settings(missing)
    assert SECRET not in repr(Settings(jwt_hs256_secret=SECRET))
    assert Settings(jwt_hs256_secret=SECRET).redacted()["EVENTPIPE_JWT_HS256_SECRET"] == "***"


def test_only_three_part_values_are_taken_for_jwts() -> None:
    assert looks_like_jwt(hs256())
    assert not looks_like_jwt("Zm9vYmFy_-token-without-dots")


async def test_the_authenticator_takes_jwts_and_still_api_tokens(
    tmp_path: Path, verifier: JwtVerifier
) -> None:
    store = IdentityStore(tmp_path)
    store.add_user("alice", "pw")
    store.add_org("acme")
    api_token = store.create_token("alice")
    auth = Authenticator(store, 60, jwt_verifier=verifier)
    carol = await auth.authenticate(f"Bearer {hs256()}")
    assert (carol.id, carol.username) == (42, "carol")
    assert (await auth.authenticate(f"Bearer {api_token}")).username == "alice"
    with pytest.raises(ApiError) as caught:
        await auth.authenticate(f"Bearer {hs256(exp=int(time.time()) - 5)}")
    assert caught.value.status == 401
    assert "expired" in caught.value.error
    assert caught.value.headers["WWW-Authenticate"].startswith("Basic")

    # The org context comes from the claims: a claimed org needs no row in the store, an org in
    # the store that the claims do not list is refused.
    resolver = OrgResolver(store, 60)
    context = await resolver.resolve(carol, OrgSelector("X-Organization", slug="acme"))
    assert (context.org, context.role) == (Org(7, "acme"), "supervisor")
    assert (await resolver.resolve(carol, OrgSelector("org_id", org_id=7))).role == "supervisor"
    with pytest.raises(ApiError) as refused:
        await resolver.resolve(carol, OrgSelector("org_id", org_id=1))
    assert (refused.value.status, refused.value.field) == (403, "org_id")
    admin, _ = verifier.verify(hs256(is_admin=True, orgs=[]))
    as_admin = await resolver.resolve(admin, OrgSelector("org", slug="acme"))
    assert as_admin.org is not None and as_admin.org.id == 1 and as_admin.role is None
    with pytest.raises(ApiError, match="organization 'ghost' does not exist"):
        await resolver.resolve(admin, OrgSelector("org", slug="ghost"))
