"""
Django REST Framework authentication for Latchkey's JWT access tokens (RFC 9068), DPoP-bound ones included
(RFC 9449). SimpleJWT verifies the access token (signature against Latchkey's JWKS, iss, aud, exp); jwcrypto verifies
the DPoP proof a bound token must come with. Copy this file into your project; docs/apps.md ("Verify tokens in your
API") has the settings, and test/interop/django-api.test.ts runs this very file against a real Latchkey.

Settings of its own, checked when Django loads the class:
- LATCHKEY_API_URL (required): the URL clients address this API at; `request.path` is appended to it to check the
  URL a proof names (`htu`). Behind a proxy, the public URL. Never taken from the request's Host header.
- LATCHKEY_DPOP_PROOF_WINDOW_SECONDS (60): how far a proof's `iat` may be from this server's clock, either way.
- LATCHKEY_DPOP_REPLAY_CACHE_SIZE (100000): how many accepted proofs still inside their window a process remembers to
  refuse a replay; when full, requests with a proof get 503 rather than a proof being forgotten while it could still
  be replayed. Each process remembers its own proofs: several processes (gunicorn workers, instances) need a shared
  store instead (a row per `jkt jti` with a unique key), or they refuse replays only per process.
And SIMPLE_JWT["AUTH_HEADER_TYPES"] must be ("Bearer", "DPoP").
"""
import hashlib
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.encoding import escape_uri_path
from jwcrypto import jwk, jws
from jwcrypto.common import JWException, base64url_encode, json_decode
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

# RFC 9449 §5.1: the proof algorithms accepted: asymmetric ones only (never "none" or HS*), the ones Latchkey
# advertises (dpop_signing_alg_values_supported) that jwcrypto 1.1 knows (it names Ed25519 signatures only "EdDSA").
DPOP_ALGORITHMS = ["ES256", "EdDSA"]

DEFAULT_PORTS = {"http": 80, "https": 443}


def comparable_uri(uri):
    """
    RFC 9449 §4.3: URIs are compared without query and fragment, after scheme-based normalisation (RFC 3986 §6.2.3:
    case, default port, empty path). None for anything but an http(s) URI.
    """
    if not isinstance(uri, str):
        return None
    try:
        parts = urlsplit(uri)
        default_port = DEFAULT_PORTS[parts.scheme]
        port = parts.port or default_port
    except (KeyError, ValueError):
        return None
    return (parts.scheme, parts.hostname, port, parts.path or "/") if parts.hostname else None


def read_settings():
    """This file's settings, every problem reported at once when Django loads the class."""
    api_url = getattr(settings, "LATCHKEY_API_URL", None)
    window_seconds = getattr(settings, "LATCHKEY_DPOP_PROOF_WINDOW_SECONDS", 60)
    replay_cache_size = getattr(settings, "LATCHKEY_DPOP_REPLAY_CACHE_SIZE", 100_000)
    problems = []
    if comparable_uri(api_url) is None:
        problems.append(f"LATCHKEY_API_URL must be the http(s) URL clients address this API at, got {api_url!r}")
    for name, value in (("LATCHKEY_DPOP_PROOF_WINDOW_SECONDS", window_seconds), ("LATCHKEY_DPOP_REPLAY_CACHE_SIZE", replay_cache_size)):
        if type(value) is not int or value < 1:
            problems.append(f"{name} must be a positive whole number, got {value!r}")
    if list(api_settings.AUTH_HEADER_TYPES) != ["Bearer", "DPoP"]:
        problems.append(f'SIMPLE_JWT["AUTH_HEADER_TYPES"] must be ("Bearer", "DPoP"), got {api_settings.AUTH_HEADER_TYPES!r}')
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
    return api_url.rstrip("/"), window_seconds, replay_cache_size


API_URL, WINDOW_SECONDS, REPLAY_CACHE_SIZE = read_settings()

class ProofReplayCache:
    """
    RFC 9449 §11.1: the proofs this process has accepted, each remembered until its `iat` window ends (after that,
    `iat` alone refuses it). Bounded: full of proofs still inside their window, it answers "full" rather than forget
    one that could then be replayed. The same as examples/api/proof-replay.ts.
    """

    def __init__(self, max_entries, window_seconds):
        self.max_entries = max_entries
        self.window_seconds = window_seconds
        self.seen = {}  # "jkt jti" → when the proof's window ends (epoch seconds); the jkt keeps keys' jtis apart
        self.lock = threading.Lock()  # a threaded server authenticates several requests at once

    def remember(self, jkt, jti, iat, now):
        key = f"{jkt} {jti}"
        with self.lock:
            ends_at = self.seen.get(key)
            if ends_at is not None and ends_at >= now:
                return "replayed"
            if len(self.seen) >= self.max_entries:
                self.seen = {seen: ends_at for seen, ends_at in self.seen.items() if ends_at >= now}
            if len(self.seen) >= self.max_entries:
                return "full"
            self.seen[key] = iat + self.window_seconds
            return "fresh"


replays = ProofReplayCache(REPLAY_CACHE_SIZE, WINDOW_SECONDS)


class ReplayCacheFull(APIException):
    status_code = 503
    default_detail = "too many DPoP proofs to remember; try again shortly"
    default_code = "temporarily_unavailable"
    wait = 5  # seconds, sent as Retry-After


def check_proof(request, access_token, jkt):
    """
    Checks the DPoP proof of a request carrying a DPoP-bound access token (RFC 9449 §4.3 and §7.1): one compact
    `dpop+jwt`, signed with an allowed algorithm by the public key in its own header, issued within the window of
    now, for this method and URL, for this access token (`ath`), by the key the token is bound to (`jkt`). Last (only
    a proof good in every other way is remembered, §11.1), one not seen before. Returns what is wrong, or None.
    """
    proof = request.META.get("HTTP_DPOP")
    if not proof:
        return "a DPoP proof is required"
    # A WSGI server joins repeated headers with commas, which a compact JWT never holds (a JWS JSON serialization,
    # whose unprotected header nobody signed, ends here too).
    if "," in proof:
        return "exactly one DPoP header is allowed"
    signed = jws.JWS()
    signed.allowed_algs = DPOP_ALGORITHMS
    try:
        signed.deserialize(proof)
        header = signed.jose_header
        # import_key, not JWK(**…): given a "generate" member, jwcrypto's constructor would make a key of that size.
        key = jwk.JWK()
        key.import_key(**header["jwk"])
    except (JWException, ValueError, TypeError, KeyError):
        return "the DPoP proof is not a JWT with a usable jwk header"
    if header.get("typ") != "dpop+jwt":
        return "the DPoP proof is not typed dpop+jwt"
    if key.has_private or not key.has_public:
        return "the DPoP proof's jwk header is not a public key"
    try:
        signed.verify(key)  # with the header's alg, if it is one of DPOP_ALGORITHMS and fits the key
        claims = json_decode(signed.payload)
    except (JWException, ValueError):
        return "the DPoP proof is not signed by its own key with an allowed algorithm"
    if not isinstance(claims, dict):
        return "the DPoP proof has no claims"
    now = time.time()
    iat = claims.get("iat")
    # A chained comparison, so that NaN (which Python's json reads) and integers beyond floats are refused too.
    if not (isinstance(iat, (int, float)) and now - WINDOW_SECONDS <= iat <= now + WINDOW_SECONDS):
        return f"the DPoP proof was not issued within {WINDOW_SECONDS} seconds of now"
    jti = claims.get("jti")
    if not isinstance(jti, str) or jti == "":
        return "the DPoP proof has no jti"
    if claims.get("htm") != request.method:
        return "the DPoP proof is for another method"
    if comparable_uri(claims.get("htu")) != comparable_uri(API_URL + escape_uri_path(request.path)):
        return "the DPoP proof is for another URL"
    if claims.get("ath") != base64url_encode(hashlib.sha256(access_token.encode()).digest()):
        return "the DPoP proof is for another access token"
    if key.thumbprint() != jkt:  # RFC 7638, SHA-256
        return "the DPoP proof is signed by another key than the token is bound to"
    remembered = replays.remember(jkt, jti, iat, now)
    if remembered == "replayed":
        return "the DPoP proof has been used before"
    if remembered == "full":
        raise ReplayCacheFull()
    return None


def challenge(scheme, error=None, description=None):
    """RFC 6750 §3 and RFC 9449 §7.1: a WWW-Authenticate challenge; a DPoP one names the proof algorithms accepted."""
    params = ['realm="api"']
    if scheme == "DPoP":
        params.append(f'algs="{" ".join(DPOP_ALGORITHMS)}"')
    if error:
        params += [f'error="{error}"', f'error_description="{description}"']
    return f"{scheme} {', '.join(params)}"


def refuse(request, scheme, error, description):
    """A 401 with the challenge of the scheme the request used, kept on the request for authenticate_header."""
    request.latchkey_challenge = challenge(scheme, error, description)
    return AuthenticationFailed(description, code=error)


class LatchkeyAuthentication(JWTStatelessUserAuthentication):
    """
    `Authorization: Bearer <token>` for an unbound token; `Authorization: DPoP <token>` and a `DPoP` proof for a token
    bound to a key (`cnf.jkt`). A bound token sent as Bearer is refused (RFC 9449 §7.2): whoever stole it lacks the
    key. `request.user.id` is the token's `sub`, `request.auth` its verified claims.
    """

    def authenticate(self, request):
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header else None  # None unless the scheme is Bearer or DPoP
        if raw_token is None:
            return None
        scheme = header.split()[0].decode()
        try:
            token = self.get_validated_token(raw_token)  # SimpleJWT: signature, iss, aud, exp
        except InvalidToken:
            raise refuse(request, scheme, "invalid_token", "the access token is invalid or expired") from None
        cnf = token.get("cnf")
        # Any other binding (`cnf` without `jkt`, such as mTLS) is one this API cannot check: refused as well.
        if scheme == "Bearer" and cnf is not None:
            raise refuse(request, scheme, "invalid_token", "the access token is sender-constrained: send it with the DPoP scheme and a DPoP proof")
        if scheme == "DPoP":
            jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
            if not isinstance(jkt, str):
                raise refuse(request, scheme, "invalid_token", "the access token is not DPoP-bound")
            problem = check_proof(request, raw_token.decode(), jkt)
            if problem:
                raise refuse(request, scheme, "invalid_dpop_proof", problem)
        return self.get_user(token), token

    def authenticate_header(self, request):
        # DRF asks for every 401's WWW-Authenticate here, after the fact: the refusal's challenge, or both schemes'.
        return getattr(request, "latchkey_challenge", f'{challenge("Bearer")}, {challenge("DPoP")}')
