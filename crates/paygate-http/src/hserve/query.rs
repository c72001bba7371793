//! The list query the SDK sends: plain filters (`status=success`, `paid_at__gte=…`), the JSON
//! `where` of `BaaS.Query` (`{"$and":[{"status":{"$eq":"success"}}]}`), `order_by`, `keys`,
//! `limit` (default 20) and `offset`. Every unknown field or operator is a 400 naming it.

use crate::request::Query;
use paygate_domain::{Amount, Problem};
use paygate_store::hserve::{Condition, Field, Op, Operand};
use paygate_store::RecordQuery;
use serde_json::Value;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 1000;
/// Parameters the SDK sends that are not filters.
const NOT_FILTERS: &[&str] = &["limit", "offset", "where", "order_by", "keys", "expand", "return_total_count"];

pub struct ParsedQuery {
    pub query: RecordQuery,
    pub keys: Option<String>,
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
    let mut all = Vec::new();
    for (name, value) in q.0.iter().filter(|(k, _)| !NOT_FILTERS.contains(&k.as_str())) {
        all.push(plain_filter(name, value)?);
    }
    if let Some(text) = q.text("where") {
        let value: Value = serde_json::from_str(&text).map_err(|e| Problem::invalid("where", format!("where must be a JSON object: {e}.")))?;
        all.push(where_condition(&value)?);
    }
    let order_by = match q.text("order_by") {
        None => Vec::new(),
        Some(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (desc, name) = s.strip_prefix('-').map(|n| (true, n)).unwrap_or((false, s));
                field(name, "order_by").map(|f| (f, desc))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(ParsedQuery { query: RecordQuery { condition: Condition::And(all), order_by, limit, offset }, keys: q.text("keys") })
}

fn field(name: &str, param: &str) -> Result<Field, Problem> {
    Field::parse(name).ok_or_else(|| Problem::invalid(param, format!("{param}: unknown field '{name}'.")))
}

/// `name` or `name__op` with the value as query text.
fn plain_filter(name: &str, value: &str) -> Result<Condition, Problem> {
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
        Op::In | Op::NotIn => Operand::List(value.split(',').map(|v| text_operand(f, name, v)).collect::<Result<_, _>>()?),
        Op::IsNull => Operand::Bool(matches!(value.to_ascii_lowercase().as_str(), "true" | "1")),
        _ => text_operand(f, name, value)?,
    };
    Ok(Condition::Field { field: f, op, value: operand })
}

fn is_int_field(f: Field) -> bool {
    matches!(f, Field::Id | Field::CreatedAt | Field::PaidAt | Field::MerchandiseSchemaId | Field::CreatedById)
}

fn text_operand(f: Field, param: &str, v: &str) -> Result<Operand, Problem> {
    if f == Field::TotalCost {
        return Ok(Operand::Int(Amount::parse_yuan(param, v)?.fen()));
    }
    if is_int_field(f) {
        return v.trim().parse::<i64>().map(Operand::Int).map_err(|_| Problem::invalid(param, format!("{param} must be an integer, got '{v}'.")));
    }
    Ok(Operand::Text(v.to_string()))
}

fn json_operand(f: Field, param: &str, v: &Value) -> Result<Operand, Problem> {
    match v {
        Value::Null => Ok(Operand::Null),
        Value::String(s) => text_operand(f, param, s),
        Value::Number(n) => text_operand(f, param, &n.to_string()),
        Value::Bool(b) => Ok(Operand::Bool(*b)),
        Value::Array(items) => Ok(Operand::List(items.iter().map(|i| json_operand(f, param, i)).collect::<Result<_, _>>()?)),
        Value::Object(_) => Err(Problem::invalid(param, format!("{param}: a value cannot be an object."))),
    }
}

/// `BaaS.Query`'s JSON: `$and`/`$or` lists of `{field: {"$op": value}}` (or `{field: value}`).
fn where_condition(v: &Value) -> Result<Condition, Problem> {
    let map = v.as_object().ok_or_else(|| Problem::invalid("where", "where must be a JSON object."))?;
    let mut all = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "$and" | "$or" => {
                let list = value.as_array().ok_or_else(|| Problem::invalid("where", format!("where: {key} takes a list.")))?;
                let parts = list.iter().map(where_condition).collect::<Result<Vec<_>, _>>()?;
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
                                other => return Err(Problem::invalid(&param, format!("{param}: unsupported operator '{other}'."))),
                            };
                            let operand = json_operand(f, &param, operand)?;
                            if matches!(op, Op::In | Op::NotIn) != matches!(operand, Operand::List(_)) && op != Op::IsNull {
                                return Err(Problem::invalid(&param, format!("{param}: $in/$nin take a list, other operators a single value.")));
                            }
                            all.push(Condition::Field { field: f, op, value: operand });
                        }
                    }
                    plain => all.push(Condition::Field { field: f, op: Op::Eq, value: json_operand(f, &param, plain)? }),
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
        let q = Query::parse("limit=5&offset=10&status=success&paid_at__gte=100&where=%7B%22%24and%22%3A%5B%7B%22gateway_type%22%3A%7B%22%24eq%22%3A%22alipay%22%7D%7D%5D%7D&order_by=-paid_at");
        let p = parse(&q).unwrap();
        assert_eq!((p.query.limit, p.query.offset), (5, 10));
        assert_eq!(p.query.order_by, vec![(Field::PaidAt, true)]);
        let Condition::And(parts) = &p.query.condition else { panic!() };
        assert_eq!(parts.len(), 3);
        for (bad, param) in [("limit=0", "limit"), ("offset=-1", "offset"), ("colour=red", "colour"), ("paid_at__gte=x", "paid_at__gte"), ("where=%5B%5D", "where"), ("total_cost=1.234", "total_cost")] {
            assert_eq!(parse(&Query::parse(bad)).err().and_then(|p| p.param).as_deref(), Some(param), "{bad}");
        }
    }
}
