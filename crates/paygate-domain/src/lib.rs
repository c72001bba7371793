//! The pure domain of paygate: money, ids, the order/charge/refund state machines and input
//! validation. Nothing here does IO (no clock, no randomness, no database); callers pass those in.

pub mod accounts;
pub mod events;
pub mod fees;
pub mod ids;
pub mod model;
pub mod money;
pub mod objects;
pub mod paging;
pub mod pos;
pub mod problem;
pub mod reconcile;
pub mod shares;
pub mod validate;

pub use model::*;
pub use money::{Amount, Currency};
pub use problem::{Problem, ProblemKind};

/// `(year, month, day, seconds into the day)` of a unix time, in the proleptic Gregorian calendar
/// (civil-from-days after Howard Hinnant). Callers shift `unix` for a time zone first.
pub fn civil(unix: i64) -> (i64, i64, i64, i64) {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d, secs)
}

/// Beijing time (UTC+8, no daylight saving): the clock every seed platform writes its times in.
pub const BEIJING_OFFSET_SECONDS: i64 = 8 * 3600;

/// A unix time as Beijing wall-clock time; the one place paygate converts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeijingTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl BeijingTime {
    pub fn of(unix: i64) -> BeijingTime {
        let (year, month, day, secs) = civil(unix.saturating_add(BEIJING_OFFSET_SECONDS));
        BeijingTime { year, month, day, hour: secs / 3600, minute: secs % 3600 / 60, second: secs % 60 }
    }

    /// `yyyyMMddHHmmss`, as WeChat writes `time_end`.
    pub fn compact(&self) -> String {
        let BeijingTime { year, month, day, hour, minute, second } = self;
        format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}")
    }

    /// `yyyy-MM-dd HH:mm:ss`, as the cashier and Alipay write times.
    pub fn dashed(&self) -> String {
        let BeijingTime { year, month, day, hour, minute, second } = self;
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn beijing_time_is_utc_plus_eight() {
        let t = super::BeijingTime::of(1_584_697_940);
        assert_eq!((t.compact(), t.dashed()), ("20200320175220".into(), "2020-03-20 17:52:20".into()));
        assert_eq!(super::BeijingTime::of(-28_800).dashed(), "1970-01-01 00:00:00");
    }
}
