"""Gets a token with msal's ManagedIdentityClient, unchanged: it finds the proxy's
managed-identity endpoint through IDENTITY_ENDPOINT and IDENTITY_HEADER, as on App Service."""
import json
import sys

import msal
import requests

resource = sys.argv[1]  # such as https://api.securitycenter.microsoft.com
client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=requests.Session())
result = client.acquire_token_for_client(resource=resource)
if "access_token" not in result:
    sys.exit(f"no token: {result}")
print(json.dumps({"token": result["access_token"], "expires_in": result["expires_in"]}))
