//! The list query the SDK sends: plain filters (`status=success`, `paid_at__gte=…`), the JSON
//! `where` of `BaaS.Query` (`{"$and":[{"status":{"$eq":"success"}}]}`), `order_by`, `keys`,
//! `limit` (default 20) and `offset`. Every unknown field or operator is a 400 naming it.

use crate::request::Query;
use paygate_domain::{paging, Amount, Problem};
use paygate_store::hserve::{Condition, Field, Op, Operand};
use paygate_store::RecordQuery;
use serde_json::Value;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 1000;
/// Bounds on one query, so that no filter, however written, reaches a database limit (SQLite's
/// expression depth and sort terms, PostgreSQL's 65 535 parameters) and answers 500: at most
/// this many `$and`/`$or` levels in `where` …
pub const MAX_DEPTH: usize = 8;
/// … and values compared in all (each filter counts one, a list each of its items).
pub const MAX_VALUES: usize = 1000;
pub use paygate_store::hserve::MAX_ORDER_BY;
/// Parameters the SDK sends that are not filters.
const NOT_FILTERS: &[&str] = &["limit", "offset", "where", "order_by", "keys", "expand", "return_total_count"];

pub struct ParsedQuery {
    pub query: RecordQuery,
    pub keys: Option<String>,
}

/// What is left of [`MAX_VALUES`].
struct Budget(usize);

impl Budget {
    fn spend(&mut self, n: usize, param: &str) -> Result<(), Problem> {
        let refused = || Problem::invalid(param, format!("A query may compare at most {MAX_VALUES} values in all."));
        self.0 = self.0.checked_sub(n).ok_or_else(refused)?;
        Ok(())
    }
}

pub fn parse(q: &Query) -> Result<ParsedQuery, Problem> {
    let limit = q.int("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::invalid("limit", format!("limit must be between 1 and {MAX_LIMIT}, got {limit}.")));
    }
    let offset = q.int("offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(Problem::invalid("offset", format!("offset must not be negative, got {offset}.")));
    }
    let offset = paging::offset(offset, paging::MAX_RECORD_OFFSET, "offset")?;
    let mut budget = Budget(MAX_VALUES);
    let mut all = Vec::new();
    for (name, value) in q.0.iter().filter(|(k, _)| !NOT_FILTERS.contains(&k.as_str())) {
        all.push(plain_filter(name, value, &mut budget)?);
    }
    if let Some(text) = q.text("where") {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Problem::invalid("where", format!("where must be a JSON object: {e}.")))?;
        crate::request::reject_nul(&value, "where")?;
        all.push(where_condition(&value, 1, &mut budget)?);
    }
    let order_by = match q.text("order_by") {
        None => Vec::new(),
        Some(text) => {
            let terms: Vec<&str> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if terms.len() > MAX_ORDER_BY {
                let message = format!("order_by takes at most {MAX_ORDER_BY} fields, got {}.", terms.len());
                return Err(Problem::invalid("order_by", message));
            }
            terms
                .into_iter()
                .map(|s| {
                    let (desc, name) = s.strip_prefix('-').map(|n| (true, n)).unwrap_or((false, s));
                    field(name, "order_by").map(|f| (f, desc))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(ParsedQuery {
        query: RecordQuery { condition: Condition::And(all), order_by, limit, offset },
        keys: q.text("keys"),
    })
}

fn field(name: &str, param: &str) -> Result<Field, Problem> {
    Field::parse(name).ok_or_else(|| Problem::invalid(param, format!("{param}: unknown field '{name}'.")))
}

/// `name` or `name__op` with the value as query text.
fn plain_filter(name: &str, value: &str, budget: &mut Budget) -> Result<Condition, Problem> {
    let (base, op) = match name.rsplit_once("__") {
        Some((base, suffix)) => (
            base,
            match suffix {
                "gt" => Op::Gt,
                "gte" => Op::Gte,
                "lt" => Op::Lt,
                "lte" => Op::Lte,
                "ne" => Op::Ne,
                "in" => Op::In,
                "nin" => Op::NotIn,
                "isnull" => Op::IsNull,
                other => return Err(Problem::invalid(name, format!("Unknown filter operator '__{other}' in {name}."))),
            },
        ),
        None => (name, Op::Eq),
    };
    let f = field(base, name)?;
    let operand = match op {
        Op::In | Op::NotIn => {
            let items: Vec<&str> = value.split(',').collect();
            budget.spend(items.len(), name)?;
            Operand::List(items.into_iter().map(|v| text_operand(f, name, v)).collect::<Result<_, _>>()?)
        }
        Op::IsNull => {
            budget.spend(1, name)?;
            match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Operand::Bool(true),
                "false" | "0" => Operand::Bool(false),
                _ => return Err(Problem::invalid(name, format!("{name} must be true or false, got '{value}'."))),
            }
        }
        _ => {
            budget.spend(1, name)?;
            text_operand(f, name, value)?
        }
    };
    condition(f, op, operand, name)
}

/// The condition, once the operator fits the field: `gateway_type` takes a family or an exact
/// gateway type (anything else would silently match nothing), by equality or membership.
fn condition(f: Field, op: Op, value: Operand, param: &str) -> Result<Condition, Problem> {
    if f == Field::GatewayType {
        if matches!(op, Op::Gt | Op::Gte | Op::Lt | Op::Lte) {
            let message = format!("{param}: gateway_type can only be compared with =, !=, in, nin or isnull.");
            return Err(Problem::invalid(param, message));
        }
        let values = match &value {
            Operand::List(items) => items.as_slice(),
            one => std::slice::from_ref(one),
        };
        for v in values {
            if let Operand::Text(t) = v {
                if !paygate_core::hserve::is_gateway_filter(t) {
                    let message = format!(
                        "{param}: '{t}' is not a gateway type; use weixin_tenpay, alipay, qpay \
                         or an exact type such as weixin_tenpay_native."
                    );
                    return Err(Problem::invalid(param, message));
                }
            }
        }
    }
    Ok(Condition::Field { field: f, op, value })
}

fn text_operand(f: Field, param: &str, v: &str) -> Result<Operand, Problem> {
    if f.is_amount() {
        return Ok(Operand::Int(Amount::parse_yuan_or_zero(param, v)?.fen()));
    }
    if f.is_int() {
        return v
            .trim()
            .parse::<i64>()
            .map(Operand::Int)
            .map_err(|_| Problem::invalid(param, format!("{param} must be an integer, got '{v}'.")));
    }
    Ok(Operand::Text(v.to_string()))
}

/// One value of `where`: a string or a number (`null` only where `op` allows it). Booleans,
/// lists and objects compare with no column, so they are refused here, naming the field.
fn json_operand(f: Field, param: &str, v: &Value, null_allowed: bool) -> Result<Operand, Problem> {
    match v {
        Value::Null if null_allowed => Ok(Operand::Null),
        Value::String(s) => text_operand(f, param, s),
        Value::Number(n) => text_operand(f, param, &n.to_string()),
        Value::Null => Err(Problem::invalid(param, format!("{param}: null only compares with $eq, $ne or $isnull."))),
        _ => Err(Problem::invalid(param, format!("{param}: a value must be a string or a number, got {v}."))),
    }
}

/// `BaaS.Query`'s JSON: `$and`/`$or` lists of `{field: {"$op": value}}` (or `{field: value}`);
/// `Query.isNull(k)` / `isNotNull(k)` send `{k: {"$isnull": true|false}}`.
fn where_condition(v: &Value, depth: usize, budget: &mut Budget) -> Result<Condition, Problem> {
    if depth > MAX_DEPTH {
        return Err(Problem::invalid("where", format!("where may nest $and/$or at most {MAX_DEPTH} levels deep.")));
    }
    let map = v.as_object().ok_or_else(|| Problem::invalid("where", "where must be a JSON object."))?;
    let mut all = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "$and" | "$or" => {
                let list =
                    value.as_array().ok_or_else(|| Problem::invalid("where", format!("where: {key} takes a list.")))?;
                let parts =
                    list.iter().map(|p| where_condition(p, depth + 1, budget)).collect::<Result<Vec<_>, _>>()?;
                all.push(if key == "$and" { Condition::And(parts) } else { Condition::Or(parts) });
            }
            name => {
                let param = format!("where.{name}");
                let f = field(name, "where")?;
                match value {
                    Value::Object(ops) => {
                        for (op, operand) in ops {
                            let op = match op.as_str() {
                                "$eq" => Op::Eq,
                                "$ne" => Op::Ne,
                                "$gt" => Op::Gt,
                                "$gte" => Op::Gte,
                                "$lt" => Op::Lt,
                                "$lte" => Op::Lte,
                                "$in" => Op::In,
                                "$nin" => Op::NotIn,
                                "$isnull" => Op::IsNull,
                                other => {
                                    return Err(Problem::invalid(
                                        &param,
                                        format!("{param}: unsupported operator '{other}'."),
                                    ))
                                }
                            };
                            let operand = match (op, operand) {
                                (Op::IsNull, Value::Bool(b)) => Operand::Bool(*b),
                                (Op::IsNull, other) => {
                                    let message = format!("{param}: $isnull takes true or false, got {other}.");
                                    return Err(Problem::invalid(&param, message));
                                }
                                (Op::In | Op::NotIn, Value::Array(items)) => {
                                    budget.spend(items.len(), &param)?;
                                    let items = items.iter().map(|i| json_operand(f, &param, i, false));
                                    Operand::List(items.collect::<Result<_, _>>()?)
                                }
                                (Op::In | Op::NotIn, _) => {
                                    return Err(Problem::invalid(&param, format!("{param}: $in/$nin take a list.")))
                                }
                                (op, v) => json_operand(f, &param, v, matches!(op, Op::Eq | Op::Ne))?,
                            };
                            if !matches!(op, Op::In | Op::NotIn) {
                                budget.spend(1, &param)?;
                            }
                            all.push(condition(f, op, operand, &param)?);
                        }
                    }
                    plain => {
                        budget.spend(1, &param)?;
                        all.push(condition(f, Op::Eq, json_operand(f, &param, plain, true)?, &param)?);
                    }
                }
            }
        }
    }
    Ok(Condition::And(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_where_and_paging_parse() {
        let q = Query::parse(concat!(
            "limit=5&offset=10&status=success&paid_at__gte=100&where=",
            "%7B%22%24and%22%3A%5B%7B%22gateway_type%22%3A%7B%22%24eq%22%3A%22alipay%22%7D%7D%5D%7D",
            "&order_by=-paid_at"
        ));
        let p = parse(&q).unwrap();
        assert_eq!((p.query.limit, p.query.offset), (5, 10));
        assert_eq!(p.query.order_by, vec![(Field::PaidAt, true)]);
        let Condition::And(parts) = &p.query.condition else { panic!() };
        assert_eq!(parts.len(), 3);
        for (bad, param) in [
            ("limit=0", "limit"),
            ("offset=-1", "offset"),
            ("colour=red", "colour"),
            ("paid_at__gte=x", "paid_at__gte"),
            ("where=%5B%5D", "where"),
            ("total_cost=1.234", "total_cost"),
            ("refund_status__isnull=maybe", "refund_status__isnull"),
            ("gateway_type=paypal", "gateway_type"),
            ("gateway_type__gt=alipay", "gateway_type__gt"),
            ("where=%7B%22paid_at%22%3A%7B%22%24gt%22%3Anull%7D%7D", "where.paid_at"),
            ("where=%7B%22paid_at%22%3Atrue%7D", "where.paid_at"),
            ("where=%7B%22id%22%3A%7B%22%24in%22%3A%5B%5B1%5D%5D%7D%7D", "where.id"),
            ("where=%7B%22refund_status%22%3A%7B%22%24isnull%22%3A%22yes%22%7D%7D", "where.refund_status"),
        ] {
            assert_eq!(parse(&Query::parse(bad)).err().and_then(|p| p.param).as_deref(), Some(param), "{bad}");
        }
        let ok = Query::parse("refund_status__isnull=true&refund_amount=0&gateway_type__in=weixin_tenpay_js,alipay");
        let Condition::And(parts) = &parse(&ok).unwrap().query.condition else { panic!() };
        let null = Condition::Field { field: Field::RefundStatus, op: Op::IsNull, value: Operand::Bool(true) };
        assert_eq!(parts[0], null);
        assert_eq!(parts[1], Condition::Field { field: Field::RefundAmount, op: Op::Eq, value: Operand::Int(0) });
    }
}
