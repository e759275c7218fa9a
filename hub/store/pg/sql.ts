/**
 * The statements of the PostgreSQL store. Every batch travels as one JSON
 * parameter unpacked by the server (jsonb_array_elements / jsonb_to_recordset):
 * one round trip per batch whatever its size, and no statement text built
 * from data.
 */

export const UPSERT_NODES = `
  INSERT INTO edgefed_nodes (node_id, record, status, capabilities, last_seen, load, running_wpks, updated_at)
  SELECT r->>'node_id', r, r->>'status', ARRAY(SELECT jsonb_array_elements_text(r->'capabilities')),
         (r->>'last_seen')::bigint, (r->>'load')::float8, (r->>'running_wpks')::integer, (r->>'updated_at')::bigint
  FROM jsonb_array_elements($1::jsonb) AS x(r)
  ON CONFLICT (node_id) DO UPDATE SET
    record = EXCLUDED.record, status = EXCLUDED.status, capabilities = EXCLUDED.capabilities,
    last_seen = EXCLUDED.last_seen, load = EXCLUDED.load, running_wpks = EXCLUDED.running_wpks,
    updated_at = EXCLUDED.updated_at`;

/** Liveness alone: three columns, never the record (a heartbeat batch must stay cheap). */
export const UPDATE_LIVENESS = `
  UPDATE edgefed_nodes AS n SET last_seen = l.last_seen, load = l.load, running_wpks = l.running_wpks
  FROM jsonb_to_recordset($1::jsonb) AS l(node_id text, last_seen bigint, load float8, running_wpks integer)
  WHERE n.node_id = l.node_id`;

export const DELETE_NODES = 'DELETE FROM edgefed_nodes WHERE node_id = ANY($1::text[])';

/** Liveness columns win over the record's copy: they are written more often. */
export const SELECT_NODES = `
  SELECT record, last_seen::float8 AS last_seen, load, running_wpks FROM edgefed_nodes`;

/** Creation order is `seq`, assigned in the order of the batch (WITH ORDINALITY). */
export const UPSERT_WPKS = `
  INSERT INTO edgefed_wpks (wpk_id, state, capability, created_at, updated_at, record)
  SELECT r->>'wpk_id', r->>'state', r->>'capability', (r->>'created_at')::bigint, (r->>'updated_at')::bigint, r
  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(r, i)
  ORDER BY i
  ON CONFLICT (wpk_id) DO UPDATE SET
    state = EXCLUDED.state, capability = EXCLUDED.capability, updated_at = EXCLUDED.updated_at, record = EXCLUDED.record`;

export const UPSERT_EXECUTIONS = `
  INSERT INTO edgefed_executions (wpk_id, node_id, attempt, position, state, updated_at, record)
  SELECT x.wpk_id, x.r->>'node_id', (x.r->>'attempt')::integer, x.position, x.r->>'state', (x.r->>'updated_at')::bigint, x.r
  FROM jsonb_to_recordset($1::jsonb) AS x(wpk_id text, position integer, r jsonb)
  ON CONFLICT (wpk_id, node_id, attempt) DO UPDATE SET
    position = EXCLUDED.position, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at, record = EXCLUDED.record`;

export const DELETE_EXECUTIONS = `
  DELETE FROM edgefed_executions AS e USING jsonb_to_recordset($1::jsonb) AS x(wpk_id text, node_id text, attempt integer)
  WHERE e.wpk_id = x.wpk_id AND e.node_id = x.node_id AND e.attempt = x.attempt`;

export const DELETE_WPKS = 'DELETE FROM edgefed_wpks WHERE wpk_id = ANY($1::text[])';

export const SELECT_WPKS = 'SELECT record FROM edgefed_wpks ORDER BY created_at, seq';

export const SELECT_EXECUTIONS = 'SELECT wpk_id, record FROM edgefed_executions ORDER BY wpk_id, position';
