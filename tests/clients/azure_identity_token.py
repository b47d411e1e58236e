"""Gets tokens with azure-identity, unchanged: ManagedIdentityCredential and
DefaultAzureCredential find the proxy's managed-identity endpoint through IDENTITY_ENDPOINT and
IDENTITY_HEADER, as on App Service."""
import json
import sys

from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

scope = sys.argv[1]  # such as https://api.securitycenter.microsoft.com/.default
managed = ManagedIdentityCredential().get_token(scope)
default = DefaultAzureCredential().get_token(scope)
print(json.dumps({
    "managed": {"token": managed.token, "expires_on": managed.expires_on},
    "default": {"token": default.token, "expires_on": default.expires_on},
}))
