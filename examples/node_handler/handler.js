#!/usr/bin/env node
// The reference Bitrix24 event handler in Node.js (v18+, no packages): the same contract as
// examples/python_handler. Facts cited as "facts §N" are in BITRIX24-EVENTS.md; doc pages under docs/.
//
//   node examples/node_handler/handler.js --port 8080
//   node examples/node_handler/handler.js --parse < body.txt   (print a form body as JSON, for tests)
//
// Prints "listening on http://HOST:PORT/" once ready, logs to stderr without secrets, stops on SIGTERM/SIGINT
// after finishing the queued work.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');

const FORM_TYPE = 'application/x-www-form-urlencoded';
const DEFAULT_TOKEN_URL = 'https://oauth.bitrix.info/oauth/token/';

// ---- the PHP form parser (parse_str rules that real events use: facts §1) ----------------------------------

class FormError extends Error {
  constructor(message, status = 400) {
    super(message);
    this.status = status; // 413 for limits
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function percentDecode(raw, what, index) {
  // "+" is a space; malformed escapes stay literal, as PHP's urldecode leaves them
  const bytes = [];
  const text = raw.replace(/\+/g, ' ');
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && i + 2 < text.length && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c); // the body was read as latin1, so each char is one byte
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    throw new FormError(`${what} of pair ${index} is not UTF-8 after percent-decoding`);
  }
}

function splitKey(key) {
  key = key.replace(/^ +/, '');
  const open = key.indexOf('[');
  const clean = (s) => s.replace(/[ .]/g, '_');
  if (open < 0) return [clean(key), []];
  let base = clean(key.slice(0, open));
  const segments = [];
  let pos = open;
  while (pos < key.length && key[pos] === '[') {
    const close = key.indexOf(']', pos + 1);
    if (close < 0) {
      if (segments.length === 0) base = base + '_' + key.slice(pos + 1); // PHP: unmatched "[" becomes "_"
      break;
    }
    segments.push(key.slice(pos + 1, close));
    pos = close + 1;
  }
  return [base, segments];
}

function nextIndex(container) {
  let max = -1;
  for (const k of Object.keys(container)) if (/^-?\d+$/.test(k)) max = Math.max(max, Number(k));
  return String(max + 1);
}

function parseForm(body, { maxFields = 1000, maxDepth = 64 } = {}) {
  const text = body.toString('latin1');
  const pairs = text.split('&').filter((p) => p.length > 0);
  if (pairs.length > maxFields) throw new FormError(`the body has ${pairs.length} fields; the limit is ${maxFields}`, 413);
  const result = Object.create(null);
  pairs.forEach((pair, index) => {
    const eq = pair.indexOf('=');
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
    const [base, segments] = splitKey(percentDecode(rawKey, 'the key', index));
    if (!base) return; // PHP ignores pairs without a name
    if (segments.length >= maxDepth) {
      throw new FormError(`key ${JSON.stringify(base)} is nested ${segments.length} levels deep; the limit is ${maxDepth}`, 413);
    }
    const value = percentDecode(rawValue, `the value of ${JSON.stringify(base)}`, index);
    let container = result;
    let name = base;
    for (const segment of segments) {
      let child = container[name];
      if (child === null || typeof child !== 'object') {
        child = Object.create(null);
        container[name] = child;
      }
      container = child;
      name = segment === '' ? nextIndex(container) : segment;
    }
    container[name] = value;
  });
  return result;
}

function asItems(value) {
  if (!isObject(value)) return null;
  const keys = Object.keys(value);
  if (keys.length === 0 || !keys.every((k) => /^\d+$/.test(k))) return null;
  return keys.sort((a, b) => Number(a) - Number(b)).map((k) => value[k]);
}

// ---- helpers -------------------------------------------------------------------------------------------------

function isObject(v) {
  return v !== null && typeof v === 'object';
}

function text(v) {
  return typeof v === 'string' && v !== '' ? v : null; // nulls vanish on the wire (facts §1)
}

function httpUrl(v) {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

function sameSecret(given, expected) {
  // constant time whatever the lengths: compare digests (security-recommendations.md)
  const a = crypto.createHash('sha256').update(given, 'utf8').digest();
  const b = crypto.createHash('sha256').update(expected, 'utf8').digest();
  return crypto.timingSafeEqual(a, b) && given.length === expected.length;
}

function tokenUrlFor(serverEndpoint) {
  // settings/oauth: tokens are renewed at https://oauth.bitrix.info/oauth/token/, i.e. /oauth/token/ on the OAuth
  // server's host; server_endpoint was missing for some weeks in late 2024 (facts §2), hence the default
  if (!httpUrl(serverEndpoint)) return DEFAULT_TOKEN_URL;
  const u = new URL(serverEndpoint);
  return `${u.protocol}//${u.host}/oauth/token/`;
}

const show = (v) => JSON.stringify(String(v).slice(0, 64)); // log-safe (no newlines) rendering of an id

function makeLogger(level) {
  const order = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };
  const min = order[level] ?? 20;
  const out = (name) => (msg) => {
    if (order[name] >= min) process.stderr.write(`${new Date().toISOString()} ${name} ${msg}\n`);
  };
  return { debug: out('DEBUG'), info: out('INFO'), warning: out('WARNING'), error: out('ERROR') };
}

// ---- OnSessionStart in its three shapes (facts §3) ---------------------------------------------------------

function chatId(item, where) {
  const chat = item.chat;
  if (!isObject(chat)) throw new Error(`${where}[chat] is missing`);
  // docs-2024 and docs-2026 name it chat[id], source-2024 chat[chat_id]
  const raw = text(chat.id) ?? text(chat.chat_id);
  if (raw === null) throw new Error(`${where}[chat] has neither id nor chat_id`);
  if (!/^[0-9]+$/.test(raw) || BigInt(raw) <= 0n) {
    throw new Error(`${where}[chat] id ${JSON.stringify(raw.slice(0, 40))} is not a positive integer`);
  }
  return BigInt(raw).toString();
}

function lineName(item) {
  return isObject(item.line) ? text(item.line.name) : null;
}

function sessionsFrom(data) {
  const block = isObject(data) ? data.DATA : undefined;
  if (!isObject(block)) throw new Error('data[DATA] is missing or not a structure');
  const items = asItems(block);
  if (items === null) return [{ chatId: chatId(block, 'data[DATA]'), line: lineName(block) }]; // source-2024
  return items.map((item, i) => {
    const where = `data[DATA][${i}]`;
    if (!isObject(item)) throw new Error(`${where} is not a structure`);
    return { chatId: chatId(item, where), line: lineName(item) };
  });
}

// ---- the handler -----------------------------------------------------------------------------------------

class Handler {
  constructor(config, log) {
    this.config = config;
    this.log = log;
    this.installations = new Map(); // member_id -> {applicationToken, accessToken, refreshToken, ...}
    this.seen = new Map(); // body digest -> true, insertion-ordered for bounded eviction
    this.jobs = [];
    this.active = 0;
    this.idleWaiters = [];
    this.refreshing = new Map(); // member_id -> promise of the refreshed token
  }

  // -- answering deliveries

  handle(body, contentType) {
    const mediaType = (contentType || '').split(';')[0].trim().toLowerCase();
    if (mediaType && mediaType !== FORM_TYPE) {
      // events are always form-encoded (facts §1); JSON is only how the docs render them
      return err(415, 'unsupported_media_type', `expected ${FORM_TYPE}, got ${mediaType.slice(0, 60)}`);
    }
    if (body.length > this.config.maxBodyBytes) {
      return err(413, 'body_too_large', `${body.length} bytes; the limit is ${this.config.maxBodyBytes}`);
    }
    if (body.toString('latin1').trim() === '') return err(400, 'empty_body', 'the body is empty');
    let payload;
    try {
      payload = parseForm(body, { maxFields: this.config.maxFields, maxDepth: this.config.maxDepth });
    } catch (e) {
      if (e instanceof FormError) return err(e.status, e.status === 413 ? 'body_over_limit' : 'malformed_body', e.message);
      throw e;
    }
    let event = text(payload.event);
    if (event === null) return err(400, 'malformed_body', "the body has no 'event' field (is it form-encoded?)");
    event = event.toUpperCase();
    const auth = payload.auth;
    if (!isObject(auth)) return err(401, 'missing_auth', 'the body has no auth block');
    if (event === 'ONAPPINSTALL') return this.install(auth);
    if (event === 'ONAPPUPDATE') return this.update(auth);
    const [memberId, rejection] = this.authenticate(auth, event);
    if (rejection) return rejection;
    if (event === 'ONAPPUNINSTALL') {
      const known = this.installations.delete(memberId);
      this.log.info(`ONAPPUNINSTALL: member ${show(memberId)} ${known ? 'forgotten' : 'was not stored'}`);
      return ok('uninstalled');
    }
    if (event === 'ONSESSIONSTART') return this.sessionStart(memberId, body, payload.data, auth);
    this.log.info(`${event} from member ${show(memberId)}: accepted, nothing to do`);
    return ok('event accepted', { event });
  }

  configuredToken(memberId) {
    const { applicationToken, memberId: only } = this.config;
    return applicationToken && (only === null || only === memberId) ? applicationToken : null;
  }

  authenticate(auth, event) {
    // settings/cloud-and-on-premise/security-recommendations.md, "Validate application_token in Events"
    const memberId = text(auth.member_id);
    const given = text(auth.application_token);
    if (memberId === null || given === null) {
      this.log.warning(`${event} rejected: auth has no member_id or application_token`);
      return [null, err(401, 'invalid_application_token', 'auth[member_id] and auth[application_token] are required')];
    }
    const stored = this.installations.get(memberId);
    const expected = stored ? stored.applicationToken : this.configuredToken(memberId);
    const matches = sameSecret(given, expected ?? given + '\0'); // same work whether or not a token is on record
    if (expected === null || !matches) {
      this.log.warning(`${event} rejected: application_token does not match for member ${show(memberId)}`);
      return [null, err(403, 'invalid_application_token', 'auth[application_token] is not the one on record')];
    }
    return [memberId, null];
  }

  install(auth) {
    const memberId = text(auth.member_id);
    const token = text(auth.application_token);
    if (memberId === null || token === null) {
      return err(400, 'invalid_install', 'ONAPPINSTALL needs auth[member_id] and auth[application_token]');
    }
    const clientEndpoint = text(auth.client_endpoint);
    if (clientEndpoint !== null && !httpUrl(clientEndpoint)) {
      return err(400, 'invalid_install', 'auth[client_endpoint] is not an http(s) URL');
    }
    const replaced = this.installations.has(memberId);
    this.installations.set(memberId, {
      applicationToken: token,
      accessToken: text(auth.access_token),
      refreshToken: text(auth.refresh_token),
      expires: text(auth.expires),
      clientEndpoint,
      serverEndpoint: text(auth.server_endpoint),
      domain: text(auth.domain),
    });
    this.log.info(`ONAPPINSTALL: ${replaced ? 're-installed' : 'installed'} member ${show(memberId)} (${show(auth.domain)})`);
    return ok('installed');
  }

  async update(auth) {
    // ONAPPUPDATE may bring a new application_token (on-app-update.md): accepted with the token on record, or
    // when the portal on record confirms the event's access_token (app.info at the stored client_endpoint)
    const memberId = text(auth.member_id);
    const given = text(auth.application_token);
    if (memberId === null || given === null) {
      return err(401, 'invalid_application_token', 'auth[member_id] and auth[application_token] are required');
    }
    const stored = this.installations.get(memberId);
    const onRecord = stored ? stored.applicationToken : this.configuredToken(memberId);
    let confirmed = onRecord !== null && sameSecret(given, onRecord);
    if (!confirmed && stored && text(auth.access_token) && httpUrl(stored.clientEndpoint)) {
      const [status, answer] = await this.post(withSlash(stored.clientEndpoint) + 'app.info.json', {
        auth: auth.access_token,
      });
      confirmed = status === 200 && 'result' in answer && !('error' in answer);
      this.log.info(`ONAPPUPDATE with a new application_token for member ${show(memberId)}: portal ${confirmed ? 'confirmed' : 'did not confirm'} it`);
    }
    if (!confirmed) {
      this.log.warning(`ONAPPUPDATE rejected: application_token does not match for member ${show(memberId)}`);
      return err(403, 'invalid_application_token', 'auth[application_token] is not the one on record');
    }
    let record = this.installations.get(memberId);
    if (!record) {
      record = { applicationToken: given };
      this.installations.set(memberId, record);
    }
    record.applicationToken = given;
    for (const [wire, name] of [
      ['access_token', 'accessToken'],
      ['refresh_token', 'refreshToken'],
      ['expires', 'expires'],
      ['client_endpoint', 'clientEndpoint'],
      ['server_endpoint', 'serverEndpoint'],
      ['domain', 'domain'],
    ]) {
      if (text(auth[wire]) !== null) record[name] = auth[wire];
    }
    this.log.info(`ONAPPUPDATE: tokens of member ${show(memberId)} replaced`);
    return ok('updated');
  }

  sessionStart(memberId, body, data, auth) {
    let sessions;
    try {
      sessions = sessionsFrom(data);
    } catch (e) {
      return err(400, 'invalid_data', e.message);
    }
    const stored = this.installations.get(memberId);
    // the work goes to the event's own portal (facts §2: client_endpoint is https://<domain>/rest/)
    const clientEndpoint = text(auth.client_endpoint) ?? (stored ? stored.clientEndpoint : null);
    if (!httpUrl(clientEndpoint)) return err(400, 'invalid_auth', 'auth[client_endpoint] is missing or not an http(s) URL');
    if (!this.firstTime(body)) {
      this.log.info(`ONSESSIONSTART from member ${show(memberId)}: repeated delivery ignored`);
      return ok('duplicate delivery ignored', { sessions: 0 });
    }
    if (this.jobs.length >= this.config.queueSize) return err(503, 'queue_full', 'too many events waiting');
    this.jobs.push({
      memberId,
      clientEndpoint: withSlash(clientEndpoint),
      serverEndpoint: text(auth.server_endpoint),
      accessToken: text(auth.access_token), // user mode carries one; system mode uses the stored one (facts §2)
      sessions,
    });
    this.log.info(`ONSESSIONSTART from member ${show(memberId)}: ${sessions.length} session(s) queued`);
    setImmediate(() => this.pump());
    return ok('event accepted', { sessions: sessions.length });
  }

  firstTime(body) {
    const digest = crypto.createHash('sha256').update(body).digest('hex');
    if (this.seen.has(digest)) return false;
    this.seen.set(digest, true);
    if (this.seen.size > this.config.dedupSize) this.seen.delete(this.seen.keys().next().value);
    return true;
  }

  // -- the queue: answered at once, worked in the background (settings/performance/queue.md)

  pump() {
    while (this.active < this.config.workers && this.jobs.length > 0) {
      const job = this.jobs.shift();
      this.active++;
      this.run(job)
        .catch((e) => this.log.error(`a queued job failed: ${e && e.name}`))
        .finally(() => {
          this.active--;
          this.pump();
          if (this.active === 0 && this.jobs.length === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
        });
    }
  }

  idle() {
    if (this.active === 0 && this.jobs.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async run(job) {
    for (const session of job.sessions) {
      const message = this.config.message.replace('{line}', session.line ?? 'us');
      await this.call(job, 'im.message.add', { DIALOG_ID: `chat${session.chatId}`, MESSAGE: message });
    }
  }

  async call(job, method, params) {
    let token = job.accessToken;
    if (token === null) {
      const stored = this.installations.get(job.memberId);
      token = stored ? stored.accessToken : null;
    }
    if (!token) {
      this.log.warning(`${method} for member ${show(job.memberId)} skipped: no OAuth token (system-mode event, no install on record)`);
      return null;
    }
    const url = job.clientEndpoint + method + '.json';
    let [status, answer] = await this.post(url, { ...params, auth: token });
    if (answer.error === 'expired_token') {
      const fresh = await this.refresh(job, token);
      if (!fresh) return null;
      [status, answer] = await this.post(url, { ...params, auth: fresh });
    }
    if ('error' in answer || status >= 400) {
      this.log.warning(`${method} for member ${show(job.memberId)} failed: HTTP ${status} ${show(answer.error ?? '')}`);
      return null;
    }
    this.log.info(`${method} for member ${show(job.memberId)}: ${params.DIALOG_ID ?? ''}`);
    return answer;
  }

  async post(url, params) {
    let reply;
    try {
      reply = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': FORM_TYPE },
        body: new URLSearchParams(params).toString(),
        signal: AbortSignal.timeout(this.config.restTimeoutMs),
      });
    } catch (e) {
      this.log.warning(`POST ${url} failed: ${e && e.name}`);
      return [0, { error: 'transport_error' }];
    }
    let answer = null;
    try {
      answer = await reply.json();
    } catch {
      answer = null;
    }
    if (!isObject(answer) || Array.isArray(answer)) answer = reply.status >= 400 ? { error: 'not_json' } : {};
    return [reply.status, answer];
  }

  clientCredentials() {
    let { clientId, clientSecret } = this.config;
    if ((clientId && clientSecret) || !this.config.credentialsFile) return [clientId, clientSecret];
    try {
      const loaded = JSON.parse(fs.readFileSync(this.config.credentialsFile, 'utf8'));
      if (isObject(loaded)) {
        clientId = clientId || text(loaded.client_id);
        clientSecret = clientSecret || text(loaded.client_secret);
      }
    } catch (e) {
      this.log.warning(`cannot read the credentials file: ${e && e.name}`);
    }
    return [clientId, clientSecret];
  }

  refresh(job, expired) {
    // one refresh per member at a time; a worker that lost the race reuses the winner's token
    const pending = this.refreshing.get(job.memberId);
    if (pending) return pending;
    const promise = this.doRefresh(job, expired).finally(() => this.refreshing.delete(job.memberId));
    this.refreshing.set(job.memberId, promise);
    return promise;
  }

  async doRefresh(job, expired) {
    const stored = this.installations.get(job.memberId);
    if (!stored || !stored.refreshToken) {
      this.log.warning(`token of member ${show(job.memberId)} expired and there is no refresh_token on record`);
      return null;
    }
    if (stored.accessToken && stored.accessToken !== expired) return stored.accessToken; // refreshed already
    const [clientId, clientSecret] = this.clientCredentials();
    if (!clientId || !clientSecret) {
      this.log.warning(`token of member ${show(job.memberId)} expired; set client_id and client_secret to refresh it`);
      return null;
    }
    const url = new URL(this.config.tokenUrl || tokenUrlFor(job.serverEndpoint ?? stored.serverEndpoint));
    url.search = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: clientId,
      client_secret: clientSecret,
      refresh_token: stored.refreshToken,
    }).toString();
    let reply;
    let answer;
    try {
      reply = await fetch(url, { signal: AbortSignal.timeout(this.config.restTimeoutMs) });
      answer = await reply.json();
    } catch (e) {
      this.log.warning(`token refresh for member ${show(job.memberId)} failed: ${e && e.name}`);
      return null;
    }
    if (!isObject(answer) || !text(answer.access_token)) {
      this.log.warning(`token refresh for member ${show(job.memberId)} refused: HTTP ${reply.status} ${show(isObject(answer) ? answer.error : 'not JSON')}`);
      return null;
    }
    stored.accessToken = answer.access_token;
    stored.refreshToken = text(answer.refresh_token) ?? stored.refreshToken;
    stored.expires = answer.expires !== undefined ? String(answer.expires) : stored.expires;
    stored.clientEndpoint = text(answer.client_endpoint) ?? stored.clientEndpoint;
    stored.serverEndpoint = text(answer.server_endpoint) ?? stored.serverEndpoint;
    this.log.info(`token of member ${show(job.memberId)} refreshed`);
    return stored.accessToken;
  }
}

function withSlash(url) {
  return url.endsWith('/') ? url : url + '/';
}

function ok(message, extra = {}) {
  return { status: 200, body: { status: 'ok', message, ...extra } };
}

function err(status, error, detail) {
  // the shape follows security-recommendations.md ("Event rejection")
  return { status, body: { status: 'error', error, detail } };
}

// ---- HTTP server ----------------------------------------------------------------------------------------------

function createServer(handler, log) {
  const send = (res, answer) => {
    if (res.headersSent || res.destroyed) return;
    const data = Buffer.from(JSON.stringify(answer.body), 'utf8');
    res.writeHead(answer.status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': data.length,
      'Cache-Control': 'no-store',
      Connection: 'close',
    });
    res.end(data);
  };
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') return send(res, ok('ready'));
    if (req.method !== 'POST') {
      req.resume();
      return send(res, err(405, 'method_not_allowed', 'events are delivered with POST'));
    }
    const limit = handler.config.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > limit) {
      send(res, err(413, 'body_too_large', `${declared} bytes; the limit is ${limit}`));
      req.destroy();
      return undefined;
    }
    const chunks = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit && !done) {
        done = true;
        send(res, err(413, 'body_too_large', `more than ${limit} bytes; the limit is ${limit}`));
        req.destroy();
        return;
      }
      if (!done) chunks.push(chunk);
    });
    req.on('error', () => {
      if (!done) {
        done = true;
        send(res, err(400, 'body_truncated', 'the body ended before its Content-Length'));
      }
    });
    req.on('aborted', () => {
      if (!done) {
        done = true;
        send(res, err(400, 'body_truncated', 'the body ended before its Content-Length'));
      }
    });
    req.on('end', async () => {
      if (done) return;
      done = true;
      try {
        send(res, await handler.handle(Buffer.concat(chunks), req.headers['content-type']));
      } catch (e) {
        log.error(`internal error while handling a delivery: ${e && e.stack ? e.stack.split('\n')[0] : e}`);
        send(res, err(500, 'internal_error', 'the handler failed; see its log'));
      }
    });
    return undefined;
  });
  server.requestTimeout = 15000; // a delivery that stalls mid-body is answered 408 by node, never hangs
  server.headersTimeout = 15000;
  return server;
}

// ---- command line ------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const env = process.env;
  const opts = {
    host: env.B24_HANDLER_HOST || '127.0.0.1',
    port: Number(env.B24_HANDLER_PORT || 0),
    clientId: env.B24_CLIENT_ID || null,
    clientSecret: env.B24_CLIENT_SECRET || null,
    credentialsFile: env.B24_CREDENTIALS_FILE || null,
    applicationToken: env.B24_APPLICATION_TOKEN || null,
    memberId: env.B24_MEMBER_ID || null,
    tokenUrl: env.B24_TOKEN_URL || null,
    workers: 4,
    maxBodyBytes: 1 << 20,
    maxFields: 1000,
    maxDepth: 64,
    queueSize: 10000,
    dedupSize: 4096,
    restTimeoutMs: 10000,
    logLevel: 'INFO',
    message: 'Hello! Thank you for writing to {line}. An operator will answer you shortly.',
    parse: false,
  };
  const names = {
    '--host': 'host',
    '--port': 'port',
    '--client-id': 'clientId',
    '--client-secret': 'clientSecret',
    '--credentials-file': 'credentialsFile',
    '--application-token': 'applicationToken',
    '--member-id': 'memberId',
    '--token-url': 'tokenUrl',
    '--workers': 'workers',
    '--max-body-bytes': 'maxBodyBytes',
    '--log-level': 'logLevel',
  };
  const numeric = new Set(['port', 'workers', 'maxBodyBytes']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--parse') {
      opts.parse = true;
      continue;
    }
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(`usage: node handler.js [--port P] [--host H] [${Object.keys(names).slice(2).join(' X] [')} X] [--parse]\n`);
      process.exit(0);
    }
    const key = names[arg];
    if (!key || i + 1 >= argv.length) throw new Error(`unknown option or missing value: ${arg}`);
    const value = argv[++i];
    opts[key] = numeric.has(key) ? Number(value) : value;
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
  if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new Error('--workers must be a positive integer');
  if (!Number.isInteger(opts.maxBodyBytes) || opts.maxBodyBytes < 1) throw new Error('--max-body-bytes must be positive');
  return opts;
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(2);
  }
  if (opts.parse) {
    const body = fs.readFileSync(0);
    try {
      process.stdout.write(JSON.stringify(parseForm(body)) + '\n');
    } catch (e) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exit(1);
    }
    return;
  }
  const log = makeLogger(opts.logLevel);
  const handler = new Handler(opts, log);
  const server = createServer(handler, log);
  server.on('error', (e) => {
    process.stderr.write(`error: cannot listen on ${opts.host}:${opts.port}: ${e.code}\n`);
    process.exit(2);
  });
  server.listen(opts.port, opts.host, () => {
    process.stdout.write(`listening on http://${opts.host}:${server.address().port}/\n`);
  });
  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: stopping`);
    server.close(); // stop accepting; open connections finish
    server.closeIdleConnections?.();
    handler.idle().then(() => {
      log.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) main();

module.exports = { Handler, createServer, parseForm, sessionsFrom, tokenUrlFor, FormError };
