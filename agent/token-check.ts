/**
 * Why the broker refused this agent at CONNECT (CONNACK 4 "bad username or
 * password" or 5 "not authorized"), from what the agent can see of its own
 * token: expired, not valid yet, for another node, not a JWT, or none at
 * all. The agent has no key, so nothing here checks a signature: the token is
 * decoded (jose's decodeJwt) to put the likely cause in one line, and to
 * tell a refusal that retrying cannot cure (back off for long) from one
 * that may pass later (the hub's key back, a clock catching up).
 */

/** Claim names of edgefed tokens (auth/claims.ts; the agent does not load the hub's auth code). */
const ROLE_CLAIM = 'role';
const CAPS_CLAIM = 'caps';

export type TokenFinding =
  | { kind: 'no_token' }
  | { kind: 'not_jwt' }
  | { kind: 'expired'; at: number }
  | { kind: 'not_yet_valid'; at: number }
  | { kind: 'wrong_subject'; sub: string | undefined }
  | { kind: 'wrong_username'; username: string; sub: string }
  | { kind: 'not_an_agent_token'; role: string }
  | { kind: 'capabilities_not_granted'; missing: string[] }
  | { kind: 'looks_valid' };

export interface OwnCredentials {
  nodeId: string;
  capabilities: readonly string[];
  username: string | undefined;
  password: string | undefined;
}

/** The claims the agent looks at, as decodeJwt gives them (or throws: not a JWT). */
export type Decode = (token: string) => Record<string, unknown>;

/** The first problem found, in the order a person would check: the token there at all, its shape, whose, when, what it grants. */
export function findTokenProblem(own: OwnCredentials, decode: Decode, now: number): TokenFinding {
  if (own.password === undefined || own.password === '') return { kind: 'no_token' };
  let claims: Record<string, unknown>;
  try {
    claims = decode(own.password);
  } catch {
    return { kind: 'not_jwt' };
  }
  const sub = typeof claims['sub'] === 'string' ? claims['sub'] : undefined;
  const role = claims[ROLE_CLAIM];
  if (typeof role === 'string' && role !== 'agent') return { kind: 'not_an_agent_token', role };
  if (sub !== own.nodeId) return { kind: 'wrong_subject', sub };
  if (own.username !== undefined && own.username !== sub) return { kind: 'wrong_username', username: own.username, sub };
  const exp = claims['exp'];
  if (typeof exp === 'number' && exp * 1000 <= now) return { kind: 'expired', at: exp * 1000 };
  const nbf = claims['nbf'];
  if (typeof nbf === 'number' && nbf * 1000 > now) return { kind: 'not_yet_valid', at: nbf * 1000 };
  const caps = Array.isArray(claims[CAPS_CLAIM]) ? (claims[CAPS_CLAIM] as unknown[]) : [];
  const missing = own.capabilities.filter((c) => !caps.includes(c));
  if (missing.length > 0) return { kind: 'capabilities_not_granted', missing };
  return { kind: 'looks_valid' };
}

const ISSUE = 'edgefed token issue --node';

/** The one line an operator reads: the likely cause and what to do. */
export function describeFinding(f: TokenFinding, own: OwnCredentials): string {
  const issue = `${ISSUE} ${own.nodeId} --capabilities ${own.capabilities.join(',')}`;
  switch (f.kind) {
    case 'no_token': return `the broker wants a token (a hub with --auth jwt) and this agent gave none: start it with --token (made with "${issue}")`;
    case 'not_jwt': return `the password this agent sends is not a JWT (three base64url parts): give this node's token from "${issue}"`;
    case 'expired': return `this agent's token expired at ${new Date(f.at).toISOString()}: issue a new one ("${issue}")`;
    case 'not_yet_valid': return `this agent's token is not valid before ${new Date(f.at).toISOString()} (nbf); is this device's clock right? It will be retried then`;
    case 'wrong_subject': return `this agent's token is for node "${f.sub ?? '(no sub)'}", not "${own.nodeId}": each node needs its own token ("${issue}")`;
    case 'wrong_username': return `the MQTT username is "${f.username}" but the token is for "${f.sub}": the broker wants the node id as username`;
    case 'not_an_agent_token': return `this agent sends a token of role "${f.role}": a node needs an agent token ("${issue}")`;
    case 'capabilities_not_granted': return `this agent's token does not grant ${f.missing.join(', ')}, which it announces: issue one with every capability ("${issue}"). That alone would refuse its subscriptions, not its connection: the token may also be signed by a key the hub does not have`;
    case 'looks_valid': return 'the broker refused a token that looks right (this node, not expired, every capability): it is probably signed by a key the hub does not have (a token from another data dir, or a rotated key), or the hub wants another issuer or audience';
  }
}

/** When retrying cannot help until someone changes the token: no token, not a JWT, another node's, expired, the wrong role or username. */
export function retryCannotHelp(f: TokenFinding): boolean {
  return f.kind === 'no_token' || f.kind === 'not_jwt' || f.kind === 'expired' || f.kind === 'wrong_subject'
    || f.kind === 'wrong_username' || f.kind === 'not_an_agent_token';
}

/** CONNACK codes of a refused CONNECT for credentials: 4 and 5 (MQTT 3.1.1), 134 and 135 (MQTT 5). */
export function isAuthRefusal(code: unknown): boolean {
  return code === 4 || code === 5 || code === 134 || code === 135;
}
