// Pages through Defender for Endpoint machines with Node's built-in fetch: the proxy's URL is the
// only change. It follows `@odata.nextLink` as given.
const base = process.argv[2];
let url = `${base}/mde/api/machines?$top=5`;
const ids = [];
const links = [];
while (url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  const page = await response.json();
  ids.push(...page.value.map((machine) => machine.id));
  url = page["@odata.nextLink"];
  if (url) links.push(url);
}
console.log(JSON.stringify({ ids, links }));
