/**
 * `edgefed token issue|rotate`: mints tokens with the hub's signing key from
 * its data dir (made only with --init-key), or rotates that key. `issue` prints the
 * token alone on stdout so that `TOKEN=$(edgefed token issue ...)` works;
 * everything else goes to stderr.
 */
import path from 'node:path';
import { checkIssueOptions, issueToken, type IssueOptions } from '../auth/tokens.js';
import { keysDir, loadOrCreateSigningKey, loadSigningKey, rotateSigningKey, type SigningKey } from '../auth/keys.js';
import { ROLES, type Role } from '../auth/types.js';
import { parseDuration } from '../lib/duration.js';
import { CliError, commandFlags, list, str, type Flags, type FlagSpecs } from './args.js';

const DATA_DIR: FlagSpecs[string] = { type: 'string', value: 'DIR', help: 'Data dir of the hub; its signing key is in DIR/keys', default: './data' };

const ISSUE_SPECS: FlagSpecs = {
  node: { type: 'string', value: 'NODE_ID', help: 'Node id of the agent (required for agents); subject of other roles (default: the role name)' },
  capabilities: { type: 'string', multiple: true, value: 'LIST', help: 'Capabilities the agent may announce, comma-separated (required for agents)' },
  role: { type: 'string', value: 'ROLE', help: `${ROLES.join(', ')}`, default: 'agent' },
  scope: { type: 'string', multiple: true, value: 'SCOPE', help: 'Scopes, comma-separated or repeated; wpk:write lets an operator create and cancel WPKs, state:write change desired state' },
  ttl: { type: 'string', value: 'DURATION', help: 'Lifetime, e.g. 12h or 30d', default: '30d' },
  'data-dir': DATA_DIR,
  'init-key': { type: 'boolean', help: 'Make a signing key in --data-dir if it has none (a hub started there with --auth jwt makes its own)' },
  issuer: { type: 'string', value: 'ISS', help: 'The iss claim (set it when the hub checks --issuer)' },
  audience: { type: 'string', value: 'AUD', help: 'The aud claim (set it when the hub checks --audience)' },
};

const ROTATE_SPECS: FlagSpecs = { 'data-dir': DATA_DIR };

const USAGE = `Usage: edgefed token <issue|rotate> [options]

  issue    Print a new token for a node, an operator or the hub
  rotate   Make a new signing key; tokens of the old one stay valid until they expire

Run "edgefed token issue --help" for its options.
`;

export async function runToken(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'issue') return runIssue(rest, env);
  if (sub === 'rotate') return runRotate(rest, env);
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  throw new CliError(`edgefed token: unknown subcommand "${sub}"; use issue or rotate. Run "edgefed token --help".`);
}

async function runIssue(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = commandFlags('token issue', argv, ISSUE_SPECS, env, {
    usage: 'edgefed token issue --node NODE_ID --capabilities LIST [options]',
    summary: 'Prints a signed token (JWT) alone on one line: pass it to "edgefed agent --token" or as the MQTT password.',
  });
  if (!parsed) return 0;
  const { flags } = parsed;
  const options = issueOptions(flags);
  try {
    checkIssueOptions(options); // before a key is made in a data dir that may be mistyped
  } catch (err) {
    throw usageError(withoutCode((err as Error).message));
  }
  const token = await issueToken(options, await signingKey(flags));
  process.stdout.write(`${token}\n`);
  return 0;
}

async function runRotate(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = commandFlags('token rotate', argv, ROTATE_SPECS, env, {
    usage: 'edgefed token rotate [options]',
    summary: 'Makes a new signing key; the old public keys stay in jwks.json so tokens they signed verify until they expire.',
  });
  if (!parsed) return 0;
  const { flags } = parsed;
  const dataDir = dataDirOf(flags);
  const key = await rotateSigningKey(dataDir);
  process.stderr.write(`edgefed token: new signing key ${key.kid} in ${path.dirname(key.jwksFile)}; ${key.jwks.keys.length} key(s) trusted in ${key.jwksFile}. Restart the hub so that it signs its own token with the new key.\n`);
  process.stdout.write(`${key.kid}\n`);
  return 0;
}

/** Flags to IssueOptions, with the role-dependent rules the flags alone cannot express. */
function issueOptions(flags: Flags): IssueOptions {
  const role = roleOf(str(flags, 'role') ?? 'agent');
  const node = str(flags, 'node');
  const caps = list(flags, 'capabilities');
  if (role === 'agent') {
    if (node === undefined) throw usageError('--node is required for an agent token (the node id, e.g. --node edge-001)');
    if (caps.length === 0) throw usageError('--capabilities is required for an agent token (e.g. --capabilities monitoring,basic-actions)');
  } else if (caps.length > 0) {
    throw usageError(`--capabilities applies to agent tokens only, not to --role ${role} (unset EDGEFED_CAPABILITIES if it came from there)`);
  }
  const issuer = str(flags, 'issuer');
  const audience = str(flags, 'audience');
  return {
    role,
    ...(node !== undefined ? { subject: node } : {}),
    ...(role === 'agent' ? { caps } : {}),
    scopes: list(flags, 'scope'),
    ttlSeconds: ttlOf(str(flags, 'ttl') ?? '30d'),
    ...(issuer !== undefined ? { issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
  };
}

function roleOf(value: string): Role {
  if ((ROLES as readonly string[]).includes(value)) return value as Role;
  throw usageError(`--role must be one of ${ROLES.join(', ')}, got "${value}"`);
}

/** A unit is required: a bare number would be milliseconds to parseDuration, never what is meant here. */
function ttlOf(text: string): number {
  if (!/[a-z]\s*$/i.test(text)) throw usageError(`--ttl needs a unit, e.g. 3600s, 12h or 30d; got "${text}"`);
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw usageError(withoutCode((err as Error).message));
  }
  if (ms < 1000) throw usageError(`--ttl must be at least 1s, got "${text}"`);
  return Math.floor(ms / 1000);
}

function dataDirOf(flags: Flags): string {
  return path.resolve(str(flags, 'data-dir') ?? './data');
}

/**
 * The hub's key in --data-dir. Without one, a new key would sign a token the
 * hub refuses (it knows only its own): so one is made only with --init-key,
 * and the key directory used is always said, on stderr.
 */
async function signingKey(flags: Flags): Promise<SigningKey> {
  const dataDir = dataDirOf(flags);
  let key: SigningKey | undefined;
  try {
    key = flags['init-key'] === true ? await loadOrCreateSigningKey(dataDir) : await loadSigningKey(dataDir);
  } catch (err) {
    throw new CliError(`edgefed token issue: cannot use the signing key in ${dataDir}: ${withoutCode((err as Error).message)}`, 1);
  }
  if (!key) {
    throw new CliError(`edgefed token issue: no signing key in ${keysDir(dataDir)}; a new one would sign tokens the hub refuses. `
      + 'Give the hub\'s --data-dir (where "edgefed start --auth jwt" keeps its key), or --init-key to make one there.', 1);
  }
  const dir = path.dirname(key.jwksFile);
  process.stderr.write(key.created ? `edgefed token: made a new signing key ${key.kid} in ${dir}\n` : `edgefed token: signed with key ${key.kid} in ${dir}\n`);
  return key;
}

function usageError(message: string): CliError {
  return new CliError(`edgefed token issue: ${message}. Run "edgefed token issue --help".`);
}

/** "EDGEFED_ERR_X: text" -> "text": the CLI says it in words. */
function withoutCode(message: string): string {
  return message.replace(/^EDGEFED_ERR_[A-Z_]+: /, '');
}
