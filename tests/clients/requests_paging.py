"""Pages through Defender for Endpoint alerts with `requests`, as a tool would: the proxy's URL is
the only change. requests asks for gzip by default and follows `@odata.nextLink` as given."""
import json
import sys

import requests

base = sys.argv[1]  # the proxy, such as http://127.0.0.1:8080
url = f"{base}/mde/api/alerts?$top=5"
ids, links = [], []
with requests.Session() as session:
    while url:
        response = session.get(url, timeout=30)
        response.raise_for_status()
        page = response.json()
        ids += [alert["id"] for alert in page["value"]]
        url = page.get("@odata.nextLink")
        if url:
            links.append(url)
print(json.dumps({
    "ids": ids,
    "links": links,
    "accept_encoding": response.request.headers["Accept-Encoding"],
}))
