//! The pure domain of paygate: money, ids, the order/charge/refund state machines and input
//! validation. Nothing here does IO (no clock, no randomness, no database); callers pass those in.

pub mod events;
pub mod fees;
pub mod ids;
pub mod model;
pub mod money;
pub mod objects;
pub mod paging;
pub mod pos;
pub mod problem;
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

/// Deterministic pseudo-random cases for property tests (xorshift64*), without a dependency.
#[cfg(test)]
pub(crate) struct Cases(pub u64);

#[cfg(test)]
impl Cases {
    /// A value in `0..below` (`below` ≥ 1).
    pub fn next(&mut self, below: i64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below.max(1) as u64) as i64
    }
}
