//! The pure domain of paygate: money, ids, the order/charge/refund state machines and input
//! validation. Nothing here does IO (no clock, no randomness, no database); callers pass those in.

pub mod events;
pub mod fees;
pub mod ids;
pub mod model;
pub mod money;
pub mod objects;
pub mod paging;
pub mod problem;
pub mod shares;
pub mod validate;

pub use model::*;
pub use money::{Amount, Currency};
pub use problem::{Problem, ProblemKind};
