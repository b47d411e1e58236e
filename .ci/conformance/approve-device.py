#!/usr/bin/env python3
"""Approve a device-code sign-in at the conformance shim (oidc-provider's devInteractions), no browser.

    python3 approve-device.py BASE_URL TENANT USER_CODE [LOGIN]

BASE_URL is the shim's http://127.0.0.1:PORT. Walks the HTML forms the way a person would:
the code-verification page (xsrf + user_code), the "Confirm Device" page (confirm=yes), the
dev login page (any login; default analyst@contoso.example), the consent page, until oidc-provider
shows "Sign-in Success". Standard library only; one cookie jar for the whole walk. Exits 0 on
success, 1 with the last page's text on failure.
"""
import html.parser
import http.cookiejar
import sys
import urllib.parse
import urllib.request

TIMEOUT = 10
MAX_STEPS = 10


class Forms(html.parser.HTMLParser):
    """Collects every <form> with its action and its <input> name/value pairs."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"id": a.get("id"), "action": a.get("action") or "", "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    base, tenant, user_code = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    login = sys.argv[4] if len(sys.argv) == 5 else "analyst@contoso.example"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def fetch(url, fields=None):
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        req = urllib.request.Request(url, data=data)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with opener.open(req, timeout=TIMEOUT) as resp:  # follows the 303s between pages
                return resp.geturl(), resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return url, e.code, e.read().decode("utf-8", "replace")

    url, status, page = fetch(f"{base}/{tenant}/oauth2/deviceauth")
    for step in range(MAX_STEPS):
        if "Sign-in Success" in page:
            print(f"approved {user_code} as {login} in {step} form posts")
            return
        parser = Forms()
        parser.feed(page)
        if status != 200 or not parser.forms:
            break
        form = parser.forms[0]
        fields = dict(form["inputs"])
        if "user_code" in fields:
            fields["user_code"] = fields["user_code"] or user_code
        if "login" in fields or form["inputs"].get("prompt") == "login":
            fields["login"] = login
            fields["password"] = "any"
        fields.pop("abort", None)
        url, status, page = fetch(urllib.parse.urljoin(url, form["action"]), fields)
    print(f"approve-device: not approved (HTTP {status} at {url}):", file=sys.stderr)
    print(page[:2000], file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
