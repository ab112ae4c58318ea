"""
Serves the Django REST Framework API of docs/apps.md for django-api.test.ts: the settings block of docs/apps.md, read
from the page and pointed at the test's Latchkey, with examples/django-api/latchkey_auth.py (the very file the page
names), on Django's own threaded development server.

Usage: django_api.py ISSUER [OVERRIDES] — OVERRIDES is a JSON object of settings to change (a dict is merged into
the documented one, null removes a setting). Prints the port it listens on, then serves GET /hello until killed.
"""
import json
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(root / "examples" / "django-api"))
issuer = sys.argv[1]
overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}

page = (root / "docs" / "apps.md").read_text()
block = next(code for code in re.findall(r"```python\n(.*?)```", page, re.S) if "SIMPLE_JWT = {" in code)
documented = {}
exec(block.replace("http://localhost:3000", issuer), {}, documented)
for name, value in overrides.items():
    if value is None:
        del documented[name]
    elif isinstance(value, dict):
        documented[name] = {**documented[name], **value}
    else:
        documented[name] = value

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="x",
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ROOT_URLCONF=__name__,
    **documented,
)
django.setup()

from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView  # loads the authentication class, which checks its settings


class Hello(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"sub": request.user.id, "scope": request.auth["scope"]})


urlpatterns = [path("hello", Hello.as_view())]

server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
server.set_app(WSGIHandler())
print(server.server_port, flush=True)
server.serve_forever()
