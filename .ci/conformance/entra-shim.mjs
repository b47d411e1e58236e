// An Entra-ID-shaped authorization server for the conformance harness: one oidc-provider
// (panva, OpenID certified) per tenant behind a path shim, so that the endpoints are Entra's
//   POST /{tenant}/oauth2/v2.0/token        POST /{tenant}/oauth2/v2.0/devicecode
//   GET  /{tenant}/discovery/v2.0/keys      GET  /{tenant}/v2.0/.well-known/openid-configuration
// plus, on the same server,
//   ANY  /upstream/...      a stand-in Defender API: verifies the Bearer JWT against the issuing
//                           tenant's signing key, answers 200 with its claims or 401;
//   GET  /_conf/counters    what happened so far (token requests, refresh-token reuse, upstream calls).
//
// Environment:
//   PORT             port on 127.0.0.1 (default 0 = any free one; the chosen one is printed)
//   TENANTS          comma-separated tenant ids (default two GUIDs)
//   AT_TTL           access-token lifetime in seconds (default 3599, like Entra)
//   DEVICE_INTERVAL  "interval" added to the device-code response (default 5, like Entra)
//   CLIENT_SECRET    secret of client 5ec7e700-0000-4000-8000-000000000001 (default dummy-secret)
//   CLIENT_CERT      PEM file with the certificate of client ce7ce700-0000-4000-8000-000000000002 (other PEM blocks are ignored);
//                    without it ce7ce700-0000-4000-8000-000000000002 is not registered
//   AUDIENCE         audience the upstream requires (default https://api.securitycenter.microsoft.com)
//
// Prints exactly one line "listening http://127.0.0.1:PORT" on stdout when ready; a short access log
// goes to stderr. Binds 127.0.0.1 only.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const TENANTS = (process.env.TENANTS || '11111111-1111-1111-1111-111111111111,22222222-2222-2222-2222-222222222222')
  .split(',').map((t) => t.trim()).filter(Boolean);
const AT_TTL = Number(process.env.AT_TTL || 3599);
const DEVICE_INTERVAL = Number(process.env.DEVICE_INTERVAL || 5);
const CLIENT_SECRET = process.env.CLIENT_SECRET || 'dummy-secret';
const AUDIENCE = process.env.AUDIENCE || 'https://api.securitycenter.microsoft.com';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// ---------------------------------------------------------------------------------------------
// Counters, read by the harness through GET /_conf/counters.
const counters = {
  token: {}, // "tenant grant_type client_id" -> { ok, errors: { error_code: n } }
  token_requests: [], // one record per token request, in order
  device_authorizations: {}, // "tenant client_id" -> n
  client_assertions: {}, // "alg thumbprint-header" -> n (accepted private_key_jwt assertions)
  refresh_tokens: [], // issued refresh tokens, newest last
  refresh_token_reuse: 0, // rotated-out refresh token presented again (grant revoked)
  grants_revoked: 0,
  missing_content_type: 0, // POSTs that came without Content-Type (defaulted to a form)
  user_agents: {}, // user-agent of token / devicecode requests -> n
  upstream: {}, // status -> n
  upstream_requests: [],
};
const bump = (obj, key, by = 1) => { obj[key] = (obj[key] || 0) + by; };

// ---------------------------------------------------------------------------------------------
// ce7ce700-0000-4000-8000-000000000002's certificate: JWK (with x5c) and Entra-style thumbprints.
function loadClientCert(file) {
  if (!file) return undefined;
  const pem = fs.readFileSync(file, 'utf8');
  const block = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  if (!block) throw new Error(`${file}: no CERTIFICATE block`);
  const cert = new crypto.X509Certificate(block[0]);
  const jwk = cert.publicKey.export({ format: 'jwk' });
  const x5t = crypto.createHash('sha1').update(cert.raw).digest('base64url');
  const x5tS256 = crypto.createHash('sha256').update(cert.raw).digest('base64url');
  return {
    x5t,
    x5tS256,
    jwk: {
      ...jwk, kid: x5t, x5c: [cert.raw.toString('base64')], x5t, 'x5t#S256': x5tS256,
    },
  };
}
const clientCert = loadClientCert(process.env.CLIENT_CERT);
const unpad = (s) => (typeof s === 'string' ? s.replace(/=+$/, '') : s);

// ---------------------------------------------------------------------------------------------
// Entra: the scope names ONE resource as "<resource>/.default"; that resource becomes the audience.
function defaultResourceFromScope(scope) {
  const resources = String(scope || '').split(' ')
    .filter((s) => s.endsWith('/.default'))
    .map((s) => s.slice(0, -'/.default'.length));
  if (resources.length > 1) {
    throw new errors.InvalidScope('AADSTS700022: The provided value for the input parameter scope is not valid because it contains more than one resource.', scope);
  }
  return resources[0];
}

function makeProvider(base, tenant) {
  const issuer = `${base}/${tenant}/v2.0`;
  const tokenUrl = `${base}/${tenant}/oauth2/v2.0/token`;
  // Each tenant has its own signing key, so a token of one tenant does not verify for the other.
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: `${tenant.slice(0, 8)}-${crypto.randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const publicKey = crypto.createPublicKey(privateKey);

  const clients = [
    {
      client_id: '5ec7e700-0000-4000-8000-000000000001',
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: '9ab11c00-0000-4000-8000-000000000003',
      token_endpoint_auth_method: 'none',
      grant_types: [DEVICE_GRANT, 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    },
  ];
  if (clientCert) {
    clients.push({
      client_id: 'ce7ce700-0000-4000-8000-000000000002',
      token_endpoint_auth_method: 'private_key_jwt',
      // token_endpoint_auth_signing_alg left unset: every RSA alg of enabledJWA is accepted.
      jwks: { keys: [clientCert.jwk] },
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    });
  }

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingJwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    scopes: ['openid', 'offline_access', 'profile'],
    routes: {
      token: '/oauth2/v2.0/token',
      device_authorization: '/oauth2/v2.0/devicecode',
      authorization: '/oauth2/v2.0/authorize',
      jwks: '/discovery/v2.0/keys',
      code_verification: '/oauth2/deviceauth',
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, _client, oneOf) {
          if (oneOf) return oneOf;
          const resource = defaultResourceFromScope(ctx.oidc.params.scope);
          if (!resource && ['client_credentials'].includes(ctx.oidc.params.grant_type)) {
            if (!ctx.oidc.params.scope) {
              throw new errors.InvalidRequest("AADSTS900144: The request body must contain the following parameter: 'scope'.");
            }
            throw new errors.InvalidScope('AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).', ctx.oidc.params.scope);
          }
          if (!resource && ctx.oidc.route === 'device_authorization') {
            throw new errors.InvalidScope('this stand-in only issues tokens for "<resource>/.default" scopes', ctx.oidc.params.scope);
          }
          return resource;
        },
        async useGrantedResource() { return true; },
        async getResourceServerInfo(_ctx, resource) {
          if (!/^https:\/\/[^/]+/.test(resource)) throw new errors.InvalidTarget();
          return {
            audience: resource,
            scope: `${resource}/.default`,
            accessTokenTTL: AT_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async extraTokenClaims() { return { tid: tenant }; },
    // Entra's rules for client assertions (on top of oidc-provider's own: signature, exp, jti
    // replay, iss == client_id, aud one of issuer/token URL).
    async assertJwtClientAuthClaimsAndHeader(ctx, claims, header, client) {
      if (claims.aud !== tokenUrl) {
        throw new errors.InvalidClientAuth(`AADSTS700212: aud must be this tenant's token URL ${tokenUrl}`);
      }
      if (claims.sub !== client.clientId) {
        throw new errors.InvalidClientAuth('AADSTS700023: sub must be the client id');
      }
      if (clientCert && client.clientId === 'ce7ce700-0000-4000-8000-000000000002') {
        const s256 = unpad(header['x5t#S256']);
        const s1 = unpad(header.x5t);
        if (!(s256 && s256 === clientCert.x5tS256) && !(s1 && s1 === clientCert.x5t)) {
          throw new errors.InvalidClientAuth('AADSTS700027: header x5t#S256 or x5t must be the certificate thumbprint');
        }
        bump(counters.client_assertions, `${header.alg} ${header['x5t#S256'] ? 'x5t#S256' : 'x5t'}`);
      }
    },
  });

  // oidc-provider keeps the reason of an error out of the response (error_detail); keep it for
  // the counters. Client authentication failures of the token endpoint come here too.
  provider.on('grant.error', (ctx, err) => {
    ctx.state.confErrorDetail = err.error_detail;
    if (err.error_detail === 'refresh token already used') counters.refresh_token_reuse += 1;
  });
  provider.on('grant.revoked', () => { counters.grants_revoked += 1; });

  // Record token requests; make the device-code response Entra-like.
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'token') {
      const params = ctx.oidc.params || {};
      const clientId = ctx.oidc.client?.clientId || params.client_id || '?';
      const grantType = params.grant_type || '?';
      const key = `${tenant} ${grantType} ${clientId}`;
      counters.token[key] ||= { ok: 0, errors: {} };
      const error = ctx.status === 200 ? undefined : (ctx.body?.error || String(ctx.status));
      if (error) bump(counters.token[key].errors, error); else counters.token[key].ok += 1;
      counters.token_requests.push({
        t: Date.now(), tenant, grant_type: grantType, client_id: clientId, status: ctx.status, error,
        error_description: ctx.body?.error_description, error_detail: ctx.state.confErrorDetail,
        expires_in: ctx.body?.expires_in, scope: params.scope, missing_content_type: Boolean(ctx.req.confMissingContentType),
      });
      bump(counters.user_agents, ctx.get('user-agent'));
      // The refresh tokens handed out, newest last: the harness checks that the proxy stores the
      // newest one and prints none (this is a throw-away test server on 127.0.0.1).
      if (ctx.status === 200 && ctx.body?.refresh_token) {
        counters.refresh_tokens.push({ tenant, client_id: clientId, grant_type: grantType, value: ctx.body.refresh_token });
      }
    } else if (route === 'device_authorization') {
      bump(counters.device_authorizations, `${tenant} ${ctx.oidc.client?.clientId || '?'}`);
      bump(counters.user_agents, ctx.get('user-agent'));
      if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        const body = { ...ctx.body };
        // Entra returns interval and message, and no verification_uri_complete.
        delete body.verification_uri_complete;
        body.interval = DEVICE_INTERVAL;
        body.message = `To sign in, use a web browser to open the page ${body.verification_uri} and enter the code ${body.user_code} to authenticate.`;
        ctx.body = body;
      }
    }
  });

  return { provider, issuer, publicKey, kid: signingJwk.kid, callback: provider.callback() };
}

// ---------------------------------------------------------------------------------------------
// Stand-in upstream API: verify the Bearer JWT (RS256, issuer = one of our tenants, signature with
// that tenant's key, exp, aud) and echo its claims.
function verifyBearer(authorization, byIssuer) {
  const m = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(authorization || '');
  if (!m) return { error: 'missing or malformed Authorization: Bearer header' };
  let header; let claims;
  try {
    header = JSON.parse(Buffer.from(m[1], 'base64url'));
    claims = JSON.parse(Buffer.from(m[2], 'base64url'));
  } catch { return { error: 'undecodable JWT' }; }
  if (header.alg !== 'RS256') return { error: `unexpected alg ${header.alg}` };
  const tenant = byIssuer.get(claims.iss);
  if (!tenant) return { error: `unknown issuer ${claims.iss}` };
  if (header.kid !== tenant.kid) return { error: 'unknown kid' };
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${m[1]}.${m[2]}`), tenant.publicKey, Buffer.from(m[3], 'base64url'));
  if (!ok) return { error: 'bad signature' };
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp <= now) return { error: 'token expired' };
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(AUDIENCE)) return { error: `audience ${claims.aud} is not ${AUDIENCE}` };
  return { claims };
}

function upstream(req, res, byIssuer) {
  const { claims, error } = verifyBearer(req.headers.authorization, byIssuer);
  const path = req.url;
  req.resume();
  const status = claims ? 200 : 401;
  bump(counters.upstream, status);
  counters.upstream_requests.push({
    status, path, client_id: claims?.client_id, tid: claims?.tid, sub: claims?.sub, exp: claims?.exp, error,
    authorization_headers: req.headersDistinct?.authorization?.length ?? 0,
  });
  const body = claims
    ? {
      iss: claims.iss, aud: claims.aud, tid: claims.tid, client_id: claims.client_id, sub: claims.sub,
      scope: claims.scope, exp: claims.exp, path, method: req.method,
    }
    : { error: { code: 'Unauthorized', message: error } };
  const headers = { 'content-type': 'application/json' };
  if (!claims) headers['www-authenticate'] = 'Bearer error="invalid_token"';
  res.writeHead(status, headers);
  res.end(JSON.stringify(body));
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

// ---------------------------------------------------------------------------------------------
const tenants = new Map();
const byIssuer = new Map();

const server = http.createServer((req, res) => {
  const raw = req.url;
  res.on('finish', () => process.stderr.write(`${req.method} ${raw.split('?')[0]} ${res.statusCode}\n`));
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/_conf/counters' && req.method === 'GET') {
    json(res, 200, counters);
    return;
  }
  if (url.pathname === '/upstream' || url.pathname.startsWith('/upstream/')) {
    upstream(req, res, byIssuer);
    return;
  }
  const m = /^\/([^/]+)(\/.*)?$/.exec(url.pathname);
  const tenant = m && tenants.get(m[1]);
  if (!tenant) {
    // What Entra answers for an unknown tenant.
    json(res, 400, { error: 'invalid_request', error_description: `AADSTS90002: Tenant '${m ? m[1] : ''}' not found.`, error_codes: [90002] });
    return;
  }
  let rest = m[2] || '/';
  let original = req.url;
  if (rest === '/v2.0/.well-known/openid-configuration') {
    // MSAL-style discovery at {authority}/v2.0/.well-known/...: mount path stays /{tenant}.
    rest = '/.well-known/openid-configuration';
    original = `/${m[1]}${rest}${url.search}`;
  }
  // Entra accepts a form POST without Content-Type; oidc-provider does not. Count and default it.
  if (req.method === 'POST' && !req.headers['content-type']) {
    counters.missing_content_type += 1;
    req.confMissingContentType = true;
    req.headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  // oidc-provider derives its mount path (for the URLs it prints: verification_uri, interaction
  // pages, the token endpoint an assertion's aud must name) from originalUrl minus url
  // (lib/helpers/oidc_context.js urlFor).
  req.originalUrl = original;
  req.url = rest + url.search;
  tenant.callback(req, res);
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  for (const t of TENANTS) {
    const p = makeProvider(base, t);
    tenants.set(t, p);
    byIssuer.set(p.issuer, p);
  }
  process.stdout.write(`listening ${base}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => { server.close(); server.closeAllConnections(); process.exit(0); });
}
