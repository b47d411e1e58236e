// The developer console: reads the proxy's console API and /-/status, and sends requests through
// the proxy from this page's origin. Everything it shows is built as text nodes, never as HTML, so
// what an API answers cannot run here. The API key, when one is needed, lives in `apiKey` only.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  // In memory only: never in localStorage, sessionStorage or a cookie.
  let apiKey = null;
  // When the token states were read, for the "expires in" countdown.
  let tokensReadAt = 0;
  let tokens = [];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  function showError(message) {
    const box = $('error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function authHeaders() {
    return apiKey ? { 'X-Api-Key': apiKey } : {};
  }

  // GET a JSON endpoint of the proxy's own; a 401 asks for the API key.
  async function getJson(path) {
    const response = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
    if (response.status === 401) {
      $('api-key-box').hidden = false;
      $('api-key').focus();
      throw new Error('The proxy needs an API key: enter it above.');
    }
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return response.json();
  }

  // ---- routes and samples -------------------------------------------------------------------

  function renderRoutes(routes) {
    const box = $('routes');
    box.replaceChildren();
    if (routes.length === 0) box.append(el('p', { class: 'muted', text: 'No routes configured.' }));
    for (const route of routes) {
      const dl = el('dl');
      const row = (name, value) => {
        if (value === null || value === undefined || value === '') return;
        dl.append(el('dt', { text: name }), el('dd', { text: String(value) }));
      };
      row('API', route.api || '(no preset)');
      row('upstream', route.upstream);
      row('credential', `${route.credential} (${route.credential_type})`);
      row(route.partner ? 'customer tenants' : 'tenant', route.tenants.join(', ') || '—');
      if (route.tenant_header) row('tenant from', 'X-Tenant-Id header');
      row('scope', route.scope);
      if (route.allow) {
        row('allowed methods', route.allow.methods.join(', ') || '—');
        row('allowed paths', route.allow.paths.join(', ') || '—');
      } else {
        row('allow-lists', 'none: every method and path');
      }
      const samples = el('div', { class: 'samples' });
      for (const sample of route.samples) {
        const button = el('button', { type: 'button', class: 'sample', title: sample.path },
          el('span', { class: 'method', text: sample.method }), sample.title);
        if (!sample.allowed) {
          button.disabled = true;
          button.title = 'the route\'s allow-lists refuse this request';
        }
        button.addEventListener('click', () => loadSample(sample));
        samples.append(button);
      }
      box.append(el('div', { class: 'route' }, el('h3', { text: route.prefix }), dl,
        route.samples.length ? samples : null));
    }
  }

  function loadSample(sample) {
    $('editor-method').value = sample.method;
    $('editor-path').value = sample.path;
    $('editor-body').value = sample.body ? JSON.stringify(JSON.parse(sample.body), null, 2) : '';
    $('editor-headers').value = Object.entries(sample.headers || {})
      .map(([name, value]) => `${name}: ${value}`).join('\n');
    $('copy-output').hidden = true;
  }

  // ---- the request editor -------------------------------------------------------------------

  function editorRequest() {
    const method = $('editor-method').value;
    const path = $('editor-path').value.trim() || '/';
    const headers = {};
    for (const line of $('editor-headers').value.split('\n')) {
      const at = line.indexOf(':');
      if (at > 0) headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const hasBody = method !== 'GET' && method !== 'DELETE' && $('editor-body').value.trim() !== '';
    const body = hasBody ? $('editor-body').value : null;
    if (hasBody && !Object.keys(headers).some((n) => n.toLowerCase() === 'content-type')) {
      headers['Content-Type'] = 'application/json';
    }
    return { method, path: path.startsWith('/') ? path : `/${path}`, headers, body };
  }

  async function send() {
    const request = editorRequest();
    const button = $('send');
    button.disabled = true;
    $('next-page').hidden = true;
    $('response-status').textContent = '…';
    $('response-status').className = 'status';
    $('response-time').textContent = '';
    const started = performance.now();
    try {
      const response = await fetch(request.path, {
        method: request.method,
        headers: { ...request.headers, ...authHeaders() },
        body: request.body,
        cache: 'no-store',
        redirect: 'manual',
      });
      const text = await response.text();
      const elapsed = performance.now() - started;
      showResponse(response, text, elapsed);
    } catch (error) {
      $('response-status').textContent = 'failed';
      $('response-status').className = 'status bad';
      $('response-body').replaceChildren(el('pre', { text: String(error) }));
    } finally {
      button.disabled = false;
      refreshState();
    }
  }

  function showResponse(response, text, elapsed) {
    const status = $('response-status');
    status.textContent = response.type === 'opaqueredirect'
      ? 'redirect (not followed)' : `${response.status} ${response.statusText}`;
    status.className = `status ${response.ok ? 'ok' : response.status >= 500 ? 'bad' : 'warn'}`;
    $('response-time').textContent = `${elapsed.toFixed(0)} ms`;
    const table = $('response-headers');
    table.replaceChildren();
    for (const [name, value] of response.headers) {
      table.append(el('tr', {}, el('th', { text: name }), el('td', { text: value })));
    }
    const body = $('response-body');
    body.replaceChildren();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (json === undefined) {
      body.append(el('pre', { text: text || '(no body)' }));
      return;
    }
    body.append(jsonNode(json, null, 0));
    const next = json && typeof json === 'object' ? json['@odata.nextLink'] : undefined;
    if (typeof next === 'string') {
      const url = new URL(next, location.origin);
      const button = $('next-page');
      if (url.origin === location.origin) {
        button.hidden = false;
        button.dataset.path = url.pathname + url.search;
        button.title = button.dataset.path;
      }
    }
  }

  // Objects and arrays as <details> (open for the first levels), values as coloured text.
  function jsonNode(value, key, depth) {
    const label = key === null ? [] : [el('span', { class: 'key', text: JSON.stringify(key) }), ': '];
    if (value !== null && typeof value === 'object') {
      const array = Array.isArray(value);
      const entries = array ? value.map((v, i) => [i, v]) : Object.entries(value);
      const count = array ? `[${entries.length}]` : `{${entries.length}}`;
      const details = el('details', {}, el('summary', {}, ...label,
        el('span', { class: 'count', text: count })));
      details.open = depth < 3;
      for (const [k, v] of entries) details.append(jsonNode(v, array ? null : k, depth + 1));
      return details;
    }
    const kind = typeof value === 'string' ? 'string' : typeof value === 'number' ? 'number' : 'literal';
    return el('div', { class: 'entry' }, ...label,
      el('span', { class: kind, text: JSON.stringify(value) }));
  }

  // ---- copy as ------------------------------------------------------------------------------

  const shellQuote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  const psQuote = (s) => `'${s.replace(/'/g, "''")}'`;

  function snippet(format) {
    const r = editorRequest();
    const url = location.origin + r.path;
    const headers = Object.entries(r.headers);
    if (format === 'curl') {
      const parts = ['curl -s'];
      if (r.method !== 'GET') parts.push(`-X ${r.method}`);
      parts.push(shellQuote(url));
      for (const [n, v] of headers) parts.push(`-H ${shellQuote(`${n}: ${v}`)}`);
      if (apiKey) parts.push('-H "X-Api-Key: $PROXY_API_KEY"');
      if (r.body !== null) parts.push(`-d ${shellQuote(r.body)}`);
      return parts.join(' \\\n  ');
    }
    if (format === 'powershell') {
      const method = r.method.charAt(0) + r.method.slice(1).toLowerCase();
      const lines = [`Invoke-RestMethod -Method ${method} -Uri ${psQuote(url)}`];
      const ps = headers.filter(([n]) => n.toLowerCase() !== 'content-type')
        .map(([n, v]) => `${psQuote(n)} = ${psQuote(v)}`);
      if (apiKey) ps.push("'X-Api-Key' = $env:PROXY_API_KEY");
      if (ps.length) lines.push(`-Headers @{ ${ps.join('; ')} }`);
      if (r.body !== null) {
        const type = headers.find(([n]) => n.toLowerCase() === 'content-type');
        lines.push(`-ContentType ${psQuote(type ? type[1] : 'application/json')}`);
        lines.push(`-Body ${psQuote(r.body)}`);
      }
      return lines.join(' `\n  ');
    }
    const py = headers.map(([n, v]) => `${JSON.stringify(n)}: ${JSON.stringify(v)}`);
    if (apiKey) py.push('"X-Api-Key": os.environ["PROXY_API_KEY"]');
    const lines = [];
    if (apiKey) lines.push('import os');
    lines.push('import requests', '', `response = requests.request(`,
      `    ${JSON.stringify(r.method)},`, `    ${JSON.stringify(url)},`);
    if (py.length) lines.push(`    headers={${py.join(', ')}},`);
    if (r.body !== null) lines.push(`    data=${JSON.stringify(r.body)},`);
    lines.push('    timeout=60,', ')', 'print(response.status_code)', 'print(response.text)');
    return lines.join('\n');
  }

  async function copyAs(format) {
    const text = snippet(format);
    const out = $('copy-output');
    out.textContent = text;
    out.hidden = false;
    try {
      await navigator.clipboard.writeText(text);
      $('copy-note').textContent = 'copied';
    } catch {
      $('copy-note').textContent = 'select it below to copy';
    }
  }

  // ---- tokens, rate limits, last requests ---------------------------------------------------

  function duration(seconds) {
    if (seconds <= 0) return 'expired';
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = Math.floor(seconds % 60);
    return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
  }

  function renderTokens() {
    const box = $('tokens');
    box.replaceChildren();
    box.className = 'tokens';
    if (tokens.length === 0) box.append(el('p', { class: 'muted', text: 'No tokens.' }));
    const elapsed = (Date.now() - tokensReadAt) / 1000;
    for (const t of tokens) {
      const dl = el('dl');
      const row = (name, value, cls) => {
        if (value === null || value === undefined || value === '') return;
        dl.append(el('dt', { text: name }), el('dd', { class: cls || '', text: String(value) }));
      };
      const state = el('span', { class: `status ${t.state === 'valid' || t.state === 'static' ? 'ok' : t.state === 'failing' ? 'bad' : 'warn'}`, text: t.state });
      row('type', t.type);
      row('tenant', t.tenant === undefined ? null : (t.tenant || '(managed identity)') + (t.customer ? ' (customer)' : ''));
      row('route', t.route);
      row('scope', t.scope);
      if (typeof t.expires_in_s === 'number') {
        row('expires in', duration(t.expires_in_s - elapsed), 'expires-in');
        row('expires at', t.expires_at);
      }
      row('audience', t.audience);
      row('roles', t.roles && (t.roles.join(', ') || '(none in the token)'));
      row('scopes', t.scopes && (t.scopes.join(', ') || '(none in the token)'));
      row('account', t.account);
      if (t.state === 'static') row('sent as', 'Authorization: Token … (Entra is not involved)');
      if (t.last_error) {
        row('last error', t.last_error.detail || t.last_error.title);
        if (t.last_error.aadsts) row('AADSTS', t.last_error.aadsts.join(', '));
        row('hint', t.last_error.hint, 'hint');
      }
      box.append(el('div', { class: 'token' }, el('h3', {}, `${t.credential} `, state), dl));
    }
  }

  // Whatever /-/status says about rate limits, shown as it is: its shape may grow.
  const LIMITS = /rate|limit|budget|hold|quota/i;

  function renderRateLimits(status) {
    const box = $('ratelimits');
    box.replaceChildren();
    let shown = 0;
    for (const [key, value] of Object.entries(status || {})) {
      if (LIMITS.test(key) && value !== null) {
        box.append(jsonNode(value, key, 0));
        shown += 1;
      }
    }
    for (const route of (status && status.routes) || []) {
      const parts = Object.entries(route).filter(([k, v]) => LIMITS.test(k) && v !== null);
      if (parts.length === 0) continue;
      const section = el('div', { class: 'route' }, el('h3', { text: route.prefix }));
      for (const [k, v] of parts) section.append(jsonNode(v, k, 0));
      box.append(section);
      shown += 1;
    }
    if (shown === 0) {
      box.append(el('p', { class: 'muted', text: 'No rate limits or holds reported (see /-/status).' }));
    }
  }

  function renderRecent(recent) {
    const table = $('recent');
    table.replaceChildren(el('tr', {}, ...['time', 'method', 'path', 'status', 'latency']
      .map((h) => el('th', { text: h }))));
    if (recent.requests.length === 0) {
      table.append(el('tr', {}, el('td', { class: 'muted', colspan: '5', text: 'No requests yet.' })));
    }
    for (const r of recent.requests) {
      const cls = r.status < 400 ? 'ok' : r.status >= 500 ? 'bad' : 'warn';
      table.append(el('tr', {},
        el('td', { text: r.at.replace('T', ' ').replace('Z', '') }),
        el('td', {}, el('span', { class: 'method', text: r.method })),
        el('td', { text: r.path }),
        el('td', {}, el('span', { class: `status ${cls}`, text: String(r.status) })),
        el('td', { text: `${r.latency_ms.toFixed(1)} ms` })));
    }
  }

  let routesShown = false;

  async function refreshState() {
    try {
      const [overview, status, recent] = await Promise.all([
        getJson('/-/console/api/overview'), getJson('/-/status'), getJson('/-/console/api/recent'),
      ]);
      showError(null);
      if (!routesShown) {
        renderRoutes(overview.routes);
        routesShown = true;
        const first = overview.routes.flatMap((r) => r.samples).find((s) => s.allowed);
        if (first && !$('editor-path').value) loadSample(first);
      }
      tokens = overview.tokens;
      tokensReadAt = Date.now();
      renderTokens();
      renderRateLimits(status);
      renderRecent(recent);
    } catch (error) {
      showError(error.message);
    }
  }

  function useKey() {
    const value = $('api-key').value;
    $('api-key').value = '';
    apiKey = value || null;
    if (apiKey) $('api-key-box').hidden = true;
    routesShown = false;
    refreshState();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('send').addEventListener('click', send);
    $('editor-path').addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });
    $('next-page').addEventListener('click', () => {
      $('editor-method').value = 'GET';
      $('editor-path').value = $('next-page').dataset.path;
      $('editor-body').value = '';
      send();
    });
    for (const format of ['curl', 'powershell', 'python']) {
      $(`copy-${format}`).addEventListener('click', () => copyAs(format));
    }
    $('api-key-use').addEventListener('click', useKey);
    $('api-key').addEventListener('keydown', (e) => { if (e.key === 'Enter') useKey(); });
    $('refresh').addEventListener('click', () => { routesShown = false; refreshState(); });
    refreshState();
    setInterval(refreshState, 10000);
    setInterval(renderTokens, 1000);
  });
})();
