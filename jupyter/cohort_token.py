"""cohort's notebook server extension: cohort may replace the server's
token while it runs, when a participant takes a warm seat that was
started before anyone owned it (package jupyter of cohort writes this
file beside the server's configuration, and calls it through Claim)."""
import json
import os

from tornado import web

try:
    from jupyter_server.base.handlers import APIHandler
except ImportError:
    from notebook.base.handlers import APIHandler


class TokenHandler(APIHandler):
    @web.authenticated
    def put(self):
        try:
            token = json.loads(self.request.body or b"{}").get("token")
        except ValueError:
            token = None
        if not isinstance(token, str) or len(token) < 32:
            raise web.HTTPError(400, "a token of at least 32 characters is required")
        self.settings["token"] = token
        identity = self.settings.get("identity_provider")
        if identity is not None:  # jupyter_server 2 keeps it there
            identity.token = token
        # Login cookies set before now are signed with the old secret.
        self.settings["cookie_secret"] = os.urandom(32)
        self.set_status(204)
        self.finish()


def load_jupyter_server_extension(app):
    base = app.web_app.settings.get("base_url", "/")
    app.web_app.add_handlers(".*$", [(base.rstrip("/") + "/cohort/token", TokenHandler)])


_load_jupyter_server_extension = load_jupyter_server_extension
