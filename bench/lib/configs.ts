/**
 * HAProxy configs of the rows. Every row has the same global/defaults, the same frontend
 * and the same free backend (`http-request return status 200`); only the authorization lines
 * differ.
 */
export interface CommonSettings {
  readonly port: number;
  readonly haproxyThreads: number;
}

function frontend(s: CommonSettings, auth: string, extra = ''): string {
  return `global
    nbthread ${s.haproxyThreads}
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend bench
    bind 127.0.0.1:${s.port}
${auth}
    # The backend costs nothing: HAProxy answers itself.
    http-request return status 200 content-type text/plain string ok
${extra}`;
}

/** Row 1: no authorization at all (the ceiling). */
export function noAuthConfig(s: CommonSettings): string {
  return frontend(s, '    # no authorization');
}

/**
 * Row 2: HAProxy's own JWT support (2.5+): signature with a PEM public key, then issuer,
 * audience and expiry checked by hand, as HAProxy's documentation shows. Every request
 * verifies the signature: HAProxy has no token cache.
 */
export function jwtConfig(s: CommonSettings, o: { pem: string; issuer: string; audience: string }): string {
  return frontend(
    s,
    `    http-request deny status 401 unless { http_auth_bearer -m found }
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('$.alg')
    http-request deny status 401 unless { var(txn.jwt_alg) -m str RS256 }
    http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.jwt_alg,"${o.pem}") -m int 1 }
    http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
    http-request deny status 401 unless { var(txn.iss) -m str ${o.issuer} }
    http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
    http-request deny status 401 unless { var(txn.aud) -m str ${o.audience} }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }`,
  );
}

/**
 * Rows 3-7: the shipped haproxy/spoe-agent.conf (message `authorize`, var-prefix auth) and
 * the verdict ACLs of haproxy/haproxy.cfg reduced to allow / deny.
 */
export function spoeConfig(s: CommonSettings, o: { spoeConf: string; agent: string }): string {
  return frontend(
    s,
    `    filter spoe engine auth config ${o.spoeConf}
    http-request deny status 503 unless { var(txn.auth.allow) -m found }
    http-request deny status 401 unless { var(txn.auth.allow) -m bool }`,
    agentsBackend(o.agent),
  );
}

/** The backend the shipped SPOE file names, with one agent. */
function agentsBackend(agent: string): string {
  return `
backend spoe-agents
    mode tcp
    balance roundrobin
    timeout connect 500ms
    timeout server 60s
    server agent1 ${agent}
`;
}

/**
 * Row 8: the same SPOE filter, file and agent backend, but nothing reads the agent's vars: a
 * request the agent answered (with an empty ACK) is forwarded. Only a SPOE error (timeout, agent
 * gone: `option set-on-error` sets `error`) is denied, so no request passes unanswered unnoticed.
 */
export function spoeForwardConfig(s: CommonSettings, o: { spoeConf: string; agent: string }): string {
  return frontend(
    s,
    `    filter spoe engine auth config ${o.spoeConf}
    http-request deny status 503 if { var(txn.auth.error) -m found }`,
    agentsBackend(o.agent),
  );
}
