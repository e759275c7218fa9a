/**
 * Every bound of the contract, in one place. The JSON Schemas
 * (schemas/definitions.ts) are built from these, so the hub's admission and
 * the agent's generated validators enforce them; the agent's own options, the
 * HTTP API and the CLI import them where they check the same thing earlier.
 * No dependencies: the agent loads this module. docs/protocol.md documents
 * the values for device makers; schemas/json/ publishes them.
 */

/** Node ids, capability names, WPK ids, action names and label names: 1..64 characters. */
export const MAX_ID_LENGTH = 64;
/** A `boot_id`: 1..64 URL-safe characters. */
export const MAX_BOOT_ID_LENGTH = 64;
/** Short free text: an agent's name and version, a CPU architecture, the hub's version. */
export const MAX_SHORT_TEXT_LENGTH = 64;
/** Capabilities one node may announce (and one token may grant). */
export const MAX_CAPABILITIES = 32;
/** Labels one node may announce, or one WPK request may require. */
export const MAX_LABELS = 32;
export const MAX_LABEL_VALUE_LENGTH = 128;
export const MAX_ENDPOINT_LENGTH = 512;
export const MIN_HEARTBEAT_INTERVAL_MS = 100;
export const MAX_HEARTBEAT_INTERVAL_MS = 86_400_000;
/** A node's `max_concurrency`, and so the `running_wpks` its heartbeat may report. */
export const MAX_CONCURRENCY = 1024;
export const MAX_CPUS = 4096;
export const MAX_MEMORY_MB = 1_073_741_824;
export const MAX_UPTIME_S = 1e10;
export const MAX_LOAD = 1e6;

/** Properties of a WPK's `params` and of an execution's `result`. */
export const MAX_PARAMS = 256;
/** Nodes one mode-`all` trigger may name; more are sent in several triggers. Also the `nodes` of a WPK request. */
export const MAX_TARGETS = 1000;
/** The `attempt` number of a trigger, an execution update or a cancel. */
export const MAX_ATTEMPT = 1000;
/** The `max_attempts` a WPK request may ask for. */
export const MAX_ATTEMPTS = 100;
/** How long one attempt may run (`timeout_ms`): one week. */
export const MAX_TIMEOUT_MS = 604_800_000;
/** An execution's `error`, and the `reason` of a hub error. */
export const MAX_ERROR_LENGTH = 2048;
/** The `topic` a hub error names. */
export const MAX_TOPIC_LENGTH = 1024;

/**
 * Largest node payload the hub accepts by default (`--max-payload`), so also
 * the largest payload the agent reads and the largest update it sends.
 */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Largest MQTT packet the embedded broker accepts by default (`--max-packet`). */
export const MAX_PACKET_BYTES = 256 * 1024;
/** Work packages the live feed sends a dashboard page (the newest), and so the most a page keeps. */
export const FEED_MAX_WPKS = 200;
/**
 * Nodes the live feed keeps a dashboard page posted on: the first ones by
 * node id. A larger fleet is paged through the API (`GET /federation/nodes?limit=`):
 * a 100,000-node snapshot and its diffs would be ~40 MB and a second of work per tick.
 */
export const FEED_MAX_NODES = 2000;
/** The dashboard's chart: the feed keeps and a page shows five minutes, one point a second. */
export const FEED_SERIES_WINDOW_MS = 300_000;
/** WPKs one `GET /federation/wpk` answers without a `limit`, and the largest `limit`. */
export const DEFAULT_WPK_LIST_LIMIT = 100;
export const MAX_WPK_LIST_LIMIT = 1000;
/** The largest page of `GET /federation/nodes?limit=` (without `limit` the list is whole, as the seed contract had it). */
export const MAX_NODE_PAGE_LIMIT = 5000;
/** A node's desired (and reported) state, serialised as JSON: 16 KB (issue 16). */
export const MAX_STATE_BYTES = 16 * 1024;
/** Nesting of a desired or reported state: objects and arrays deeper than this are refused. */
export const MAX_STATE_DEPTH = 8;
/** The `version` of a desired state (and so of a reported one). */
export const MAX_STATE_VERSION = Number.MAX_SAFE_INTEGER;
