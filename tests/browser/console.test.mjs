// The developer console in a real browser: Debian's chromium, driven by playwright-core, against
// the real `demo`. The page loads without console errors or CSP violations; a sample request
// answers 200 and its JSON shows; "next page" follows @odata.nextLink; the token panel shows an
// expiry; and a page from another origin (a second local server) can neither read from the proxy
// nor drive it. With CONSOLE_SCREENSHOT=path, a screenshot of the page is saved there.
//
// Usage: node console.test.mjs PATH-TO-defender-token-proxy

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node console.test.mjs PATH-TO-defender-token-proxy');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 30000;

// Starts `demo` on a free port and resolves with the console's URL as the demo prints it.
function startDemo() {
  const child = spawn(binary, ['demo', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The demo's log, printed only if a check fails.
  const log = [];
  createInterface({ input: child.stderr }).on('line', (line) => log.push(line));
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('demo printed no console URL')), DEADLINE_MS);
    child.on('exit', (code) => reject(new Error(`demo exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const found = line.match(/^\s*developer console\s+(http:\/\/\S+)$/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
  });
  return { child, url, log };
}

// A page on another origin (another port of 127.0.0.1: same site, other origin), which tries to
// read the proxy's status and console API and to send a hunting query through it.
function startForeignSite(proxy) {
  const page = `<!DOCTYPE html><html><body><script>
    const proxy = ${JSON.stringify(proxy)};
    async function attempt(name, request) {
      try { const r = await request(); return [name, 'read ' + r.status + ' ' + (await r.text()).slice(0, 80)]; }
      catch (e) { return [name, 'failed']; }
    }
    window.results = Promise.all([
      attempt('status', () => fetch(proxy + '/-/status')),
      attempt('overview', () => fetch(proxy + '/-/console/api/overview')),
      attempt('alerts', () => fetch(proxy + '/mde/api/alerts')),
      attempt('hunting', () => fetch(proxy + '/mde/api/advancedqueries/run', {
        method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify({ Query: 'DeviceProcessEvents | take 1' }) })
        .then((r) => ({ status: 'opaque:' + r.type, text: async () => '' }))),
    ]).then(Object.fromEntries);
  </script></body></html>`;
  const server = createServer((_, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(page);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  const demo = startDemo();
  let browser;
  let foreign;
  try {
    const consoleUrl = await demo.url;
    const proxy = new URL(consoleUrl).origin;
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    // CSP violations are also reported as events in the page.
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
    });

    const response = await page.goto(consoleUrl);
    assert.equal(response.status(), 200, 'the console loads');
    assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
    await page.locator('#routes .route h3', { hasText: '/mde' }).waitFor();
    assert.equal(await page.isVisible('#api-key-box'), false, 'no API key asked for without API keys');
    console.log('ok    the page loads and lists the routes');

    // A sample: MDE alerts, three a page.
    await page.locator('#routes .route', { hasText: '/mde' }).locator('button.sample', { hasText: 'List alerts' }).click();
    assert.equal(await page.inputValue('#editor-path'), '/mde/api/alerts?$top=3');
    await page.click('#send');
    await page.locator('#response-status', { hasText: '200' }).waitFor();
    await page.locator('#response-body .key', { hasText: '"@odata.context"' }).waitFor();
    const firstIds = await page.locator('#response-body .key:text-is("\\"id\\"") + span').allTextContents();
    assert.equal(firstIds.length, 3, 'three alerts show');
    console.log('ok    a sample request answers 200 and its JSON shows');

    await page.locator('#next-page').waitFor({ state: 'visible' });
    await page.click('#next-page');
    await page.waitForFunction(() => document.getElementById('editor-path').value.includes('skiptoken'));
    await page.locator('#response-status', { hasText: '200' }).waitFor();
    await page.locator('#response-body .key', { hasText: '"value"' }).waitFor();
    const nextIds = await page.locator('#response-body .key:text-is("\\"id\\"") + span').allTextContents();
    assert.ok(nextIds.length > 0, 'the next page has alerts');
    assert.ok(nextIds.every((id) => !firstIds.includes(id)), 'the next page has other alerts');
    console.log('ok    next page follows @odata.nextLink through the proxy');

    // A POST (its Origin is the proxy's own, which the screening lets through).
    await page.locator('#routes .route', { hasText: '/graph' }).locator('button.sample', { hasText: 'Run hunting query' }).click();
    await page.click('#send');
    await page.locator('#response-status', { hasText: '200' }).waitFor();
    console.log('ok    a hunting query (POST) answers 200');

    await page.click('#copy-curl');
    const curl = await page.textContent('#copy-output');
    assert.match(curl, /^curl -s \\\n {2}-X POST \\\n/, curl);
    assert.ok(curl.includes(`'${proxy}/graph/v1.0/security/runHuntingQuery'`), curl);
    console.log('ok    copy as curl');

    await page.locator('#tokens .token dd.expires-in').first().waitFor();
    const expiry = await page.locator('#tokens .token dd.expires-in').first().textContent();
    assert.match(expiry, /\d+ (h|min|s)/, `the token panel shows an expiry: ${expiry}`);
    const tokensText = await page.textContent('#tokens');
    assert.ok(tokensText.includes('valid') && tokensText.includes('audience'), tokensText);
    console.log(`ok    the token panel shows an expiry (${expiry})`);

    await page.click('#refresh');
    await page.locator('#recent td', { hasText: '/mde/api/alerts' }).first().waitFor();
    const recent = await page.textContent('#recent');
    assert.ok(!recent.includes('skiptoken') && !recent.includes('$top'), 'no query values in the last requests');
    console.log('ok    the last requests show, without their queries');

    if (process.env.CONSOLE_SCREENSHOT) {
      await page.locator('#routes .route', { hasText: '/mde' }).locator('button.sample', { hasText: 'List alerts' }).click();
      await page.click('#send');
      await page.locator('#response-status', { hasText: '200' }).waitFor();
      await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT, fullPage: false });
      console.log(`ok    screenshot saved to ${process.env.CONSOLE_SCREENSHOT}`);
    }

    // Another origin: nothing readable, and the POST refused by the proxy (403 in its list).
    foreign = await startForeignSite(proxy);
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${foreign.address().port}/`);
    const results = await other.evaluate(() => window.results);
    for (const name of ['status', 'overview', 'alerts']) {
      assert.equal(results[name], 'failed', `a foreign page cannot read ${name}: ${results[name]}`);
    }
    const direct = await fetch(`${proxy}/-/status`, {
      headers: { Origin: `http://127.0.0.1:${foreign.address().port}`, 'Sec-Fetch-Site': 'same-site' },
    });
    assert.equal(direct.status, 403, 'a foreign origin is refused with 403');
    const list = await (await fetch(`${proxy}/-/console/api/recent`)).json();
    const hunting = list.requests.find((r) => r.method === 'POST' && r.path === '/mde/api/advancedqueries/run');
    assert.ok(hunting, 'the foreign POST reached the proxy');
    assert.equal(hunting.status, 403, 'and was refused with 403, nothing sent upstream');
    console.log('ok    a page from another origin can neither read from nor drive the proxy');

    assert.deepEqual(problems, [], 'no console errors or CSP violations on the console page');
    console.log('ok    no console errors, no CSP violations');
  } catch (error) {
    console.error(demo.log.join('\n'));
    throw error;
  } finally {
    if (browser) await browser.close();
    if (foreign) foreign.close();
    demo.child.kill('SIGTERM');
  }
}

main().then(() => console.log('browser tests passed'), (error) => {
  console.error(`FAIL  ${error.stack || error}`);
  process.exitCode = 1;
});
