"""Pages through Defender XDR incidents with `httpx`: the proxy's URL is the only change. httpx
asks for gzip by default and follows `@odata.nextLink` as given."""
import json
import sys

import httpx

base = sys.argv[1]
url = f"{base}/xdr/api/incidents?$top=2"
ids, links = [], []
with httpx.Client(timeout=30) as client:
    while url:
        response = client.get(url)
        response.raise_for_status()
        page = response.json()
        ids += [incident["incidentId"] for incident in page["value"]]
        url = page.get("@odata.nextLink")
        if url:
            links.append(url)
print(json.dumps({
    "ids": ids,
    "links": links,
    "accept_encoding": response.request.headers["Accept-Encoding"],
}))
