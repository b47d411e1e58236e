"""Pages through Graph security alerts (alerts_v2) with the Microsoft Graph SDK and its own page
iterator. Unchanged but for two things the SDK documents: kiota's anonymous authentication
provider (the proxy adds the token) and the proxy as the base URL."""
import asyncio
import json
import sys

from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.security.alerts_v2.alerts_v2_request_builder import Alerts_v2RequestBuilder
from msgraph_core.tasks.page_iterator import PageIterator


async def main(base: str) -> None:
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = f"{base}/graph/v1.0"
    graph = GraphServiceClient(request_adapter=adapter)
    query = Alerts_v2RequestBuilder.Alerts_v2RequestBuilderGetQueryParameters(top=5)
    first = await graph.security.alerts_v2.get(RequestConfiguration(query_parameters=query))
    ids, links = [], []
    # Later pages are parsed as the type of the first (AlertCollectionResponse).
    pages = PageIterator(first, adapter)

    def collect(alert) -> bool:
        ids.append(alert.id)
        link = pages.current_page.odata_next_link
        if link and link not in links:
            links.append(link)
        return True

    await pages.iterate(collect)
    print(json.dumps({"ids": ids, "links": links}))


asyncio.run(main(sys.argv[1]))
