//! Claiming due deliveries: what one claim reads grows with the batch and with the endpoints that
//! have pending deliveries, never with the backlog (a claim used to rank every due delivery).
//!
//! 1. [`endpoints_sql`] walks the distinct endpoints of pending deliveries (one index seek each, a
//!    "loose index scan" over `deliveries_ready`), keeps those with a due, unleased delivery and
//!    room under their limit, oldest due first, and locks at most `limit` of them
//!    (`FOR UPDATE SKIP LOCKED` on PostgreSQL: two nodes never claim for one endpoint at once, so
//!    the per-endpoint limit holds across nodes; SQLite's single writer does the same).
//! 2. Per locked endpoint, [`DUE_OF_ENDPOINT`] reads its first due deliveries and its leases out,
//!    counted after the lock so that no other node's fresh leases are missed.
//! 3. [`pick`] takes turns across endpoints (every endpoint's first due delivery before any
//!    endpoint's second; oldest first within a turn), within each endpoint's room.
//! 4. [`lease_sql`] leases the picked rows with a conditional UPDATE that re-checks each row, and
//!    [`targets_sql`] reads their endpoints and events in one query.

use super::{attempt_params, event, Attempt, Claim, DueDelivery, DELIVERY_UNSENDABLE, INSERT_ATTEMPT};
use crate::rows::{RowLike, SqlParam};
use crate::sql::Tx;
use crate::Result;
use paygate_domain::Problem;

/// The endpoints to claim for: `$1` now, `$2` at most this many, `$3` the per-endpoint limit.
/// Deleted and disabled endpoints come too (their due deliveries are dropped, never sent).
fn endpoints_sql(lock: &str) -> String {
    format!(
        "WITH RECURSIVE pending (endpoint_id) AS ( \
             SELECT (SELECT endpoint_id FROM deliveries WHERE status = 'pending' ORDER BY endpoint_id LIMIT 1) \
             UNION ALL \
             SELECT (SELECT d.endpoint_id FROM deliveries d WHERE d.status = 'pending' \
                 AND d.endpoint_id > p.endpoint_id ORDER BY d.endpoint_id LIMIT 1) \
             FROM pending p WHERE p.endpoint_id IS NOT NULL) \
         SELECT e.id, e.deleted OR e.disabled FROM webhook_endpoints e \
         WHERE e.id IN (SELECT endpoint_id FROM pending) AND ({OLDEST_DUE}) <= $1 \
         AND (e.deleted OR e.disabled OR (SELECT COUNT(*) FROM deliveries l WHERE l.endpoint_id = e.id \
             AND l.status = 'pending' AND l.lease_until > $1) < $3) \
         ORDER BY ({OLDEST_DUE}), e.id LIMIT $2 {lock}"
    )
}

/// When the endpoint's oldest unleased pending delivery is due.
const OLDEST_DUE: &str = "SELECT d.next_attempt_at FROM deliveries d WHERE d.endpoint_id = e.id \
    AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until <= $1) ORDER BY d.next_attempt_at LIMIT 1";

/// An endpoint's first due, unleased deliveries (`$3` of them at most) and its leases still out.
/// `$1` now, `$2` the endpoint.
pub const DUE_OF_ENDPOINT: &str = "SELECT d.seq, d.next_attempt_at, d.event_created, \
    (SELECT COUNT(*) FROM deliveries l WHERE l.endpoint_id = $2 AND l.status = 'pending' AND l.lease_until > $1) \
    FROM deliveries d WHERE d.endpoint_id = $2 AND d.status = 'pending' AND d.next_attempt_at <= $1 \
    AND (d.lease_until IS NULL OR d.lease_until <= $1) ORDER BY d.next_attempt_at, d.seq LIMIT $3";

/// Due deliveries of a deleted endpoint are dropped, never sent. `$1` now, `$2` the endpoint. So are those of a
/// disabled one: disabling fails its pending deliveries, and this catches one a fan-out committed just after.
pub const DROP_DELETED_ENDPOINTS_DUE: &str = "UPDATE deliveries SET status = 'failed', lease_until = NULL \
    WHERE endpoint_id = $2 AND status = 'pending' AND next_attempt_at <= $1 \
    AND (lease_until IS NULL OR lease_until <= $1)";

/// One due delivery of a locked endpoint, as [`DUE_OF_ENDPOINT`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub seq: i64,
    pub endpoint: usize,
    pub next_attempt_at: i64,
    pub event_created: i64,
}

/// Which candidates to lease: `due[i]` are endpoint `i`'s due deliveries in order with its leases
/// already out. An endpoint's `k`-th delivery goes only while `k + leased <= per_endpoint`; turns
/// come first (every endpoint's first before any second), then the oldest; at most `limit`.
pub fn pick(due: Vec<(Vec<Candidate>, i64)>, per_endpoint: i64, limit: i64) -> Vec<Candidate> {
    let mut placed: Vec<(i64, Candidate)> = Vec::new();
    for (candidates, leased) in due {
        let room = (per_endpoint - leased).max(0);
        placed.extend((1..=room).zip(candidates));
    }
    placed.sort_by_key(|(place, c)| (*place, c.next_attempt_at, c.seq));
    placed.into_iter().take(usize::try_from(limit).unwrap_or(0)).map(|(_, c)| c).collect()
}

/// `n` placeholders from `$first`, padded to a power of two so that a statement's text (and so
/// the prepared statements a connection keeps) takes a handful of shapes, not one per count;
/// [`padded`] repeats the last value to fill them (a repeat in `IN (…)` changes nothing).
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n.next_power_of_two()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn padded(values: impl IntoIterator<Item = i64>) -> Vec<SqlParam> {
    let mut out: Vec<SqlParam> = values.into_iter().map(SqlParam::Int).collect();
    if let Some(last) = out.last().cloned() {
        out.resize(out.len().next_power_of_two(), last);
    }
    out
}

/// `$1` now, `$2` the lease, `$3`/`$4` the lowest and highest month key (PostgreSQL reads only
/// those months), then the seqs. The rows are locked skipping any another transaction holds, and
/// the UPDATE re-checks each: a row that is no longer pending, due and unleased is not leased.
fn lease_sql(seqs: usize, lock: &str) -> String {
    let list = placeholders(5, seqs);
    let still_due = "status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
        AND event_created BETWEEN $3 AND $4";
    format!(
        "UPDATE deliveries SET lease_until = $2 WHERE seq IN (SELECT seq FROM deliveries \
             WHERE seq IN ({list}) AND {still_due} {lock}) AND {still_due} \
         RETURNING seq, event_id, endpoint_id, attempts, event_created"
    )
}

/// The claimed deliveries with their events (columns 0–6, as [`super::event`] reads them) and
/// endpoints: `$1`/`$2` the month keys' range, then the seqs.
fn targets_sql(seqs: usize) -> String {
    let list = placeholders(3, seqs);
    format!(
        "SELECT v.id, v.app_id, v.livemode, v.created, v.type, v.data, \
             (SELECT COUNT(*) FROM deliveries p \
              WHERE p.event_id = v.id AND p.event_created = v.created AND p.status = 'pending'), \
             d.seq, w.url, w.secret \
         FROM deliveries d LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id \
         LEFT JOIN events v ON v.id = d.event_id AND v.created = d.event_created \
         WHERE d.seq IN ({list}) AND d.event_created BETWEEN $1 AND $2"
    )
}

/// A claimed delivery as the UPDATE returns it.
struct Leased {
    seq: i64,
    endpoint_id: String,
    attempts: i64,
    event_created: i64,
}

/// The whole claim, in the caller's transaction.
pub(crate) async fn claim(tx: &mut dyn Tx, claim: &Claim) -> Result<Vec<DueDelivery>> {
    let c = claim;
    let params = [SqlParam::Int(c.now), SqlParam::Int(c.limit), SqlParam::Int(c.per_endpoint)];
    let endpoints_sql = endpoints_sql(tx.for_update_skip_locked());
    let endpoints = tx.query(&endpoints_sql, &params, |r| Ok((r.text(0)?, r.boolean(1)?))).await?;
    let mut due = Vec::with_capacity(endpoints.len());
    let mut live = Vec::with_capacity(endpoints.len());
    for (id, deleted) in endpoints {
        let params = [SqlParam::Int(c.now), SqlParam::Text(id.clone())];
        if deleted {
            tx.exec(DROP_DELETED_ENDPOINTS_DUE, &params).await?;
            continue;
        }
        let params = [params[0].clone(), params[1].clone(), SqlParam::Int(c.per_endpoint.min(c.limit))];
        let endpoint = live.len();
        let row = |r: &dyn RowLike| {
            let candidate =
                Candidate { seq: r.int(0)?, endpoint, next_attempt_at: r.int(1)?, event_created: r.int(2)? };
            Ok((candidate, r.int(3)?))
        };
        let rows = tx.query(DUE_OF_ENDPOINT, &params, row).await?;
        let leased = rows.first().map_or(0, |(_, leased)| *leased);
        due.push((rows.into_iter().map(|(candidate, _)| candidate).collect(), leased));
        live.push(id);
    }
    let picked = pick(due, c.per_endpoint, c.limit);
    let (Some(low), Some(high)) =
        (picked.iter().map(|p| p.event_created).min(), picked.iter().map(|p| p.event_created).max())
    else {
        return Ok(Vec::new());
    };
    let mut params = vec![SqlParam::Int(c.now), SqlParam::Int(c.lease_until), SqlParam::Int(low), SqlParam::Int(high)];
    params.extend(padded(picked.iter().map(|p| p.seq)));
    let lease_sql = lease_sql(picked.len(), tx.for_update_skip_locked());
    let row = |r: &dyn RowLike| {
        Ok(Leased { seq: r.int(0)?, endpoint_id: r.text(2)?, attempts: r.int(3)?, event_created: r.int(4)? })
    };
    let leased = tx.query(&lease_sql, &params, row).await?;
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = vec![SqlParam::Int(low), SqlParam::Int(high)];
    params.extend(padded(leased.iter().map(|l| l.seq)));
    let row = |r: &dyn RowLike| {
        let event = r.opt_text(0)?.map(|_| event(r));
        let target = match (r.opt_text(8)?, r.opt_text(9)?) {
            (Some(url), Some(secret)) => Some((url, secret)),
            _ => None,
        };
        Ok((r.int(7)?, (target, event)))
    };
    let mut found: std::collections::HashMap<i64, _> =
        tx.query(&targets_sql(leased.len()), &params, row).await?.into_iter().collect();
    let mut out = Vec::with_capacity(leased.len());
    for l in leased {
        let (target, event) = found.remove(&l.seq).unwrap_or((None, None));
        // One unreadable row is failed with its reason; it never fails the claim.
        match due_delivery(&l, c, target, event) {
            Ok(delivery) => out.push(delivery),
            Err(why) => {
                for (sql, params) in unsendable_statements(l.seq, l.event_created, c.now, &why) {
                    tx.exec(sql, &params).await?;
                }
            }
        }
    }
    Ok(out)
}

/// A claimed row with its endpoint and event as read in the claim's transaction, or why it
/// cannot be sent.
fn due_delivery(
    l: &Leased,
    claim: &Claim,
    target: Option<(String, String)>,
    event: Option<Result<paygate_domain::events::Event>>,
) -> Result<DueDelivery> {
    let (url, secret) = target.ok_or_else(|| Problem::internal("its endpoint is missing"))?;
    let event = event.ok_or_else(|| Problem::internal("its event is missing"))??;
    let (seq, endpoint_id, attempts) = (l.seq, l.endpoint_id.clone(), l.attempts);
    Ok(DueDelivery { seq, endpoint_id, url, secret, attempts, lease_until: claim.lease_until, event })
}

/// What fails a claimed delivery that cannot be sent at all, with the reason as its attempt.
fn unsendable_statements(seq: i64, event_created: i64, now: i64, why: &Problem) -> [(&'static str, Vec<SqlParam>); 2] {
    let error = Some(format!("not sent: {}", why.message));
    let attempt = Attempt { attempted_at: now, status_code: None, latency_ms: 0, error, response_snippet: None };
    let unsendable = vec![SqlParam::Int(seq), SqlParam::Int(event_created)];
    [(INSERT_ATTEMPT, attempt_params(seq, event_created, &attempt)), (DELIVERY_UNSENDABLE, unsendable)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(endpoint: usize, seqs: &[(i64, i64)]) -> Vec<Candidate> {
        seqs.iter().map(|&(seq, at)| Candidate { seq, endpoint, next_attempt_at: at, event_created: at }).collect()
    }

    fn seqs(picked: &[Candidate]) -> Vec<i64> {
        picked.iter().map(|c| c.seq).collect()
    }

    #[test]
    fn endpoints_take_turns_within_their_room() {
        // Endpoint 0 has a long backlog, 1 two deliveries, 2 one: first deliveries go first,
        // oldest first among them, then second ones.
        let all = vec![
            (due(0, &[(1, 10), (2, 11), (3, 12), (4, 13)]), 0),
            (due(1, &[(5, 20), (6, 21)]), 0),
            (due(2, &[(7, 5)]), 0),
        ];
        assert_eq!(seqs(&pick(all.clone(), 16, 4)), [7, 1, 5, 2]);
        assert_eq!(seqs(&pick(all.clone(), 16, 100)), [7, 1, 5, 2, 6, 3, 4]);
        // Leases already out count: endpoint 0 with 2 of 3 out gets one more; 1 at its limit none.
        let busy = vec![(all[0].0.clone(), 2), (all[1].0.clone(), 3), (all[2].0.clone(), 0)];
        assert_eq!(seqs(&pick(busy, 3, 100)), [7, 1]);
        // More leases out than the limit (a node with a higher limit): nothing, never a negative room.
        assert!(pick(vec![(all[0].0.clone(), 9)], 3, 100).is_empty());
        assert!(pick(all, 16, 0).is_empty());
    }

    #[test]
    fn placeholder_lists_take_few_shapes() {
        assert_eq!(placeholders(5, 1), "$5");
        assert_eq!(placeholders(3, 3), "$3, $4, $5, $6");
        let p = padded([7, 8, 9]);
        assert_eq!(p.len(), 4);
        assert!(matches!(p[3], SqlParam::Int(9)));
        assert!(padded([]).is_empty());
    }
}
