/**
 * Who may use which MQTT client id, publish where and subscribe to what: the
 * broker's side of the identity model (auth/types.ts). Pure functions of an
 * Identity and a topic, so every rule is testable without a broker; the aedes
 * glue (broker/auth-hooks.ts) only looks identities up and reports verdicts.
 * Per-node rules follow AWS IoT's `${iot:Connection.Thing.ThingName}`
 * policies: an agent's node id is its token's subject, never what it claims.
 */
import type { Identity } from '../auth/types.js';
import { isValidId } from '../lib/ids.js';
import { parseObject } from '../lib/json.js';
import { DEFAULT_TOPIC_ROOT, topics, type Topics } from '../lib/topics.js';

/** Why a PUBLISH was refused; counted and logged by this code. */
export type PublishRefusal =
  /** An agent published outside its own `nodes/{node_id}/`. */
  | 'not_own_node'
  /** An agent published on its own `commands`: only the hub sends commands. */
  | 'own_commands'
  /** An agent published on its own `desired`: only the hub sets desired state. */
  | 'own_desired'
  /** A registration announcing a capability the token's `caps` do not hold. */
  | 'caps_exceeded'
  /** A non-empty registration whose capabilities cannot be read, so cannot be checked. */
  | 'registration_unreadable'
  /** Operators read; they never publish. */
  | 'read_only_role'
  /** The hub publishes only below the federation's namespace. */
  | 'outside_namespace'
  /** No verified identity (a Will whose owner is gone, and that is not its own status). */
  | 'no_identity';

/** Why a SUBSCRIBE filter was refused (SUBACK 0x80). */
export type SubscribeRefusal = 'not_granted' | 'outside_namespace' | 'no_identity';

export type Verdict<Reason extends string> = { ok: true } | { ok: false; reason: Reason };

export interface Acl {
  /** The topic root the rules are written for (`edgefed/v1` by default). */
  readonly root: string;
  /**
   * An identity whose subject or capabilities could escape into other topics
   * (an agent named `+`, a capability `#`) is unusable whatever its signature:
   * returns what is wrong, or undefined when the identity is sound.
   */
  identityFlaw(identity: Identity): string | undefined;
  /** Whether `identity` may connect with this MQTT client id at all. */
  mayUseClientId(identity: Identity, clientId: string): boolean;
  /**
   * Whether `identity` may take over a live session of `holder` on the same
   * client id (aedes closes the older one): only a token for that id may.
   */
  mayTakeOver(identity: Identity, holder: Identity, clientId: string): boolean;
  mayPublish(identity: Identity, topic: string, payload: Buffer): Verdict<PublishRefusal>;
  maySubscribe(identity: Identity, filter: string): Verdict<SubscribeRefusal>;
  /**
   * A Will fired by aedes after its owner is gone (`client` null: a cluster
   * peer died). Without an identity to check, only a node's own status Will is
   * let through, the one presence depends on; `clientId` is the owner's.
   */
  mayPublishOrphanWill(clientId: string | undefined, topic: string): Verdict<PublishRefusal>;
}

const ALLOW: Verdict<never> = Object.freeze({ ok: true });

function refuse<Reason extends string>(reason: Reason): Verdict<Reason> {
  return { ok: false, reason };
}

export function createAcl(root: string = DEFAULT_TOPIC_ROOT): Acl {
  const t = topics(root);
  // `edgefed/` for `edgefed/v1`: operators watch with `edgefed/#` (docs/protocol.md),
  // which is wider than the root, so the namespace is the root's first level.
  const namespace = `${root.split('/')[0]}/`;
  const inNamespace = (topic: string) => topic.startsWith(namespace);

  return {
    root,
    identityFlaw,
    mayUseClientId: (identity, clientId) => identity.role !== 'agent' || clientId === identity.subject,
    mayTakeOver(identity, holder, clientId) {
      if (identity.role === 'agent') return identity.subject === clientId;
      return identity.role === holder.role && identity.subject === holder.subject;
    },
    mayPublish(identity, topic, payload) {
      switch (identity.role) {
        case 'hub':
          return inNamespace(topic) ? ALLOW : refuse('outside_namespace');
        case 'operator':
          return refuse('read_only_role');
        case 'agent':
          return agentMayPublish(t, identity, topic, payload);
      }
    },
    maySubscribe(identity, filter) {
      switch (identity.role) {
        case 'hub':
        case 'operator':
          return inNamespace(filter) ? ALLOW : refuse('outside_namespace');
        case 'agent':
          return agentFilters(t, identity).has(filter) || isBelowOwnNode(t, identity.subject, filter)
            ? ALLOW
            : refuse('not_granted');
      }
    },
    mayPublishOrphanWill(clientId, topic) {
      const parsed = t.parse(topic);
      const ownStatus = parsed?.kind === 'node' && parsed.family === 'status' && parsed.nodeId === clientId;
      return ownStatus ? ALLOW : refuse('no_identity');
    },
  };
}

function identityFlaw(identity: Identity): string | undefined {
  if (identity.role !== 'agent') return undefined;
  if (!isValidId(identity.subject)) return 'agent subject is not a valid node id';
  if (!identity.caps.every(isValidId)) return 'agent caps hold a name that is not a valid capability';
  return undefined;
}

/** `nodes/{X}/` prefix; X is a valid id (identityFlaw), so no wildcard can widen it. */
function ownPrefix(t: Topics, nodeId: string): string {
  return `${t.root}/nodes/${nodeId}/`;
}

function isBelowOwnNode(t: Topics, nodeId: string, topicOrFilter: string): boolean {
  return topicOrFilter.startsWith(ownPrefix(t, nodeId));
}

function agentMayPublish(t: Topics, identity: Identity, topic: string, payload: Buffer): Verdict<PublishRefusal> {
  if (!isBelowOwnNode(t, identity.subject, topic)) return refuse('not_own_node');
  const family = topic.slice(ownPrefix(t, identity.subject).length).split('/')[0];
  // Checked by level, not by parse(): `commands/x` is no protocol topic, yet
  // the node's own `commands/#` subscription would deliver it as if from the hub.
  if (family === 'commands') return refuse('own_commands');
  if (family === 'desired') return refuse('own_desired');
  if (family === 'registration') return registrationWithinCaps(identity.caps, payload);
  return ALLOW;
}

/**
 * A registration may announce only capabilities the token grants, or a node
 * could draw triggers meant for others. Anything the broker cannot read is
 * refused rather than passed on unchecked: the hub would refuse it as well.
 */
function registrationWithinCaps(caps: readonly string[], payload: Buffer): Verdict<PublishRefusal> {
  // Empty retained payload: the contract's deregistration.
  if (payload.length === 0) return ALLOW;
  const announced = readCapabilities(payload);
  if (announced === undefined) return refuse('registration_unreadable');
  const granted = new Set(caps);
  return announced.every((cap) => granted.has(cap)) ? ALLOW : refuse('caps_exceeded');
}

function readCapabilities(payload: Buffer): string[] | undefined {
  const parsed = parseObject(payload);
  if (!parsed.ok) return undefined;
  const capabilities: unknown = parsed.value.capabilities;
  if (!Array.isArray(capabilities) || !capabilities.every((cap) => typeof cap === 'string')) return undefined;
  return capabilities as string[];
}

/**
 * The exact filters an agent may use besides its own `nodes/{X}/...`. The
 * issue proposed `wpk/{c}/#`, but that also matches `wpk/{c}/trigger/{Y}`:
 * triggers addressed to other nodes (their params, their mode-`one` work).
 * So only the two trigger topics an agent needs, without wildcards, plus the
 * hub's status and its own refusal reports.
 */
function agentFilters(t: Topics, identity: Identity): Set<string> {
  const filters = new Set([t.hubStatus(), t.hubError(identity.subject)]);
  for (const cap of identity.caps) {
    filters.add(t.trigger(cap));
    filters.add(t.trigger(cap, identity.subject));
  }
  return filters;
}
