"""Verifies a Latchkey access token with Django REST Framework + SimpleJWT, configured exactly as docs/apps.md says.

Usage: simplejwt_check.py ISSUER AUDIENCE TOKEN [BOUND_TOKEN] — prints one JSON line per case (valid, tampered,
missing, and with BOUND_TOKEN, a DPoP-bound token sent as Bearer).
"""
import json
import sys
import django
from django.conf import settings

issuer, audience, token = sys.argv[1], sys.argv[2], sys.argv[3]
bound_token = sys.argv[4] if len(sys.argv) > 4 else None
settings.configure(
    DEBUG=True,
    SECRET_KEY="x",
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ROOT_URLCONF=__name__,
    REST_FRAMEWORK={
        # The myapi.authentication.LatchkeyJWTAuthentication of docs/apps.md, defined below in this script.
        "DEFAULT_AUTHENTICATION_CLASSES": ("__main__.LatchkeyJWTAuthentication",),
        "DEFAULT_PERMISSION_CLASSES": ("rest_framework.permissions.IsAuthenticated",),
    },
    SIMPLE_JWT={
        "ALGORITHM": "RS256",
        "JWK_URL": f"{issuer}/.well-known/jwks.json",
        "ISSUER": issuer,
        "AUDIENCE": audience,
        "USER_ID_CLAIM": "sub",
        "TOKEN_TYPE_CLAIM": None,
        "AUTH_HEADER_TYPES": ("Bearer",),
        "VERIFYING_KEY": None,
        "SIGNING_KEY": None,
    },
)
django.setup()
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

class LatchkeyJWTAuthentication(JWTStatelessUserAuthentication):
    """SimpleJWT cannot check DPoP proofs: refuse sender-constrained tokens (RFC 9449 §7.2) sent as Bearer."""

    def get_validated_token(self, raw_token):
        token = super().get_validated_token(raw_token)
        if "cnf" in token:
            raise AuthenticationFailed("the access token is sender-constrained", code="invalid_token")
        return token

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.test import APIRequestFactory

class Hello(APIView):
    def get(self, request):
        return Response({"sub": request.user.id, "scope": request.auth["scope"]})

urlpatterns = [path("hello", Hello.as_view())]
factory = APIRequestFactory()
cases = [("valid", f"Bearer {token}"), ("tampered", f"Bearer {token[:-4]}AAAA"), ("missing", None)]
if bound_token:
    cases.append(("dpop-bound", f"Bearer {bound_token}"))
for label, header in cases:
    request = factory.get("/hello", HTTP_AUTHORIZATION=header) if header else factory.get("/hello")
    response = Hello.as_view()(request)
    response.render()
    print(json.dumps({"case": label, "status": response.status_code, "body": json.loads(response.content)}))
