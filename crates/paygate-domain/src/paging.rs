//! List queries: filters plus either Ping++ page numbers or Stripe cursors.

use crate::Problem;

pub const MAX_PER_PAGE: i64 = 20;
pub const DEFAULT_PER_PAGE: i64 = 10;
pub const MAX_PAGE: i64 = 100_000_000;
pub const MAX_LIMIT: i64 = 100;
/// The most rows a `/v1` page may skip (`(page - 1) × per_page`). A database finds an offset
/// page by walking every row before it, so its cost grows with the offset; deeper pages are
/// refused (400 naming the parameter) rather than letting one request walk millions. Cursors
/// (`starting_after`) and `created` windows reach any depth with one index seek.
pub const MAX_OFFSET: i64 = 10_000;
/// The same for 知晓云 record lists (`offset`): each record skipped is also looked up in
/// `hserve_orders`, and the bounded `total_count` reads past the skipped records too.
pub const MAX_RECORD_OFFSET: i64 = 1_000;

/// `offset` within `0..=max`, or the refusal naming `param`.
#[track_caller]
pub fn offset(offset: i64, max: i64, param: &str) -> Result<i64, Problem> {
    if !(0..=max).contains(&offset) {
        return Err(Problem::invalid(
            param,
            format!(
                "{param} would skip {offset} rows; offset paging stops at {max} (a page walks every row before \
                 it): page with cursors or narrow the list with a created filter."
            ),
        ));
    }
    Ok(offset)
}

/// A list's `limit`: `default` when absent, else 1 to `max` — out of range is refused, never
/// clamped, so a client learns its page is not the size it asked for.
#[track_caller]
pub fn limit(value: Option<i64>, default: i64, max: i64) -> Result<i64, Problem> {
    let limit = value.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(Problem::invalid("limit", format!("limit must be between 1 and {max}, got {limit}.")));
    }
    Ok(limit)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// Ping++ `page` (1-based) / `per_page`.
    Page { page: i64, per_page: i64 },
    /// Stripe cursors: `limit` with at most one of `starting_after` / `ending_before`.
    Cursor { limit: i64, starting_after: Option<String>, ending_before: Option<String> },
}

impl Paging {
    pub fn page(page: Option<i64>, per_page: Option<i64>) -> Result<Paging, Problem> {
        let page = page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(Problem::invalid("page", format!("page must be between 1 and {MAX_PAGE}.")));
        }
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(Problem::invalid("per_page", format!("per_page must be between 1 and {MAX_PER_PAGE}.")));
        }
        offset((page - 1) * per_page, MAX_OFFSET, "page")?;
        Ok(Paging::Page { page, per_page })
    }

    pub fn cursor(
        limit: Option<i64>,
        starting_after: Option<String>,
        ending_before: Option<String>,
    ) -> Result<Paging, Problem> {
        let limit = self::limit(limit, DEFAULT_PER_PAGE, MAX_LIMIT)?;
        if starting_after.is_some() && ending_before.is_some() {
            return Err(Problem::invalid("ending_before", "starting_after and ending_before cannot be used together."));
        }
        Ok(Paging::Cursor { limit, starting_after, ending_before })
    }

    pub fn size(&self) -> i64 {
        match self {
            Paging::Page { per_page, .. } => *per_page,
            Paging::Cursor { limit, .. } => *limit,
        }
    }
}

/// `created[gt|gte|lt|lte]` as a half-open-or-closed range over unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedRange {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

/// Filters of seed 004 (`app` is implied by the caller's scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub uid: Option<String>,
    pub receipt_app: Option<String>,
    pub service_app: Option<String>,
    pub paid: Option<bool>,
    pub refunded: Option<bool>,
    pub canceled: Option<bool>,
    pub created: CreatedRange,
    /// A 知晓云 record's `merchandise_record_id` (the console's merchandise filter; `/v1` has none): the
    /// records' own index then finds the page, so only orders that have such a record are listed.
    pub merchandise_record_id: Option<String>,
}

/// Filters of `GET /v1/charges` (`app[id]` is implied by the caller's scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargeFilter {
    pub channel: Option<String>,
    pub paid: Option<bool>,
    /// Refunded in full, as a charge's `refunded` says.
    pub refunded: Option<bool>,
    pub reversed: Option<bool>,
    pub created: CreatedRange,
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_bounds() {
        assert!(Paging::page(Some(0), None).is_err());
        assert_eq!(Paging::page(None, Some(21)).unwrap_err().param.as_deref(), Some("per_page"));
        assert_eq!(Paging::page(None, None).unwrap(), Paging::Page { page: 1, per_page: 10 });
        // The deepest page skips exactly MAX_OFFSET rows; one more is refused, naming `page`.
        assert_eq!(Paging::page(Some(MAX_OFFSET / 20 + 1), Some(20)).unwrap().size(), 20);
        assert_eq!(Paging::page(Some(MAX_OFFSET / 20 + 2), Some(20)).unwrap_err().param.as_deref(), Some("page"));
        assert_eq!(Paging::page(Some(MAX_PAGE), Some(1)).unwrap_err().param.as_deref(), Some("page"));
        assert_eq!(offset(MAX_RECORD_OFFSET, MAX_RECORD_OFFSET, "offset").unwrap(), MAX_RECORD_OFFSET);
        for bad in [-1, MAX_RECORD_OFFSET + 1, i64::MAX] {
            assert_eq!(offset(bad, MAX_RECORD_OFFSET, "offset").unwrap_err().param.as_deref(), Some("offset"), "{bad}");
        }
        assert!(Paging::cursor(Some(0), None, None).is_err());
        assert!(Paging::cursor(None, Some("a".into()), Some("b".into())).is_err());
        for bad in [0, -5, 101, i64::MIN, i64::MAX] {
            assert_eq!(limit(Some(bad), 20, 100).unwrap_err().param.as_deref(), Some("limit"), "{bad}");
        }
        assert_eq!((limit(None, 20, 100).unwrap(), limit(Some(100), 20, 100).unwrap()), (20, 100));
    }
}
