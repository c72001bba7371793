//! The console overview: today, 7 days and 30 days of settled money, by channel family and by face. Finished
//! days come from the worker's daily rollup ([`Paygate::console_rollup`], paygate-store `overview.rs`); today is
//! read live through indexes bounded to today, and kept by the node for [`LIVE_FRESH_SECONDS`]. A page view
//! therefore reads at most 30 rollup rows per (channel family, face) plus, at most once in that time, today's
//! payments, whatever the size of the order history.

use super::{ConsoleCaller, Permission};
use crate::Paygate;
use paygate_domain::reconcile::BillDate;
use paygate_domain::{Problem, Scope};
use paygate_store::{Figure, Figures};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Days the overview looks back (its longest period), and so the days the rollup keeps current.
pub const OVERVIEW_DAYS: i64 = 30;
const DAY: i64 = 86_400;
/// How long a node reuses an app's live figures for today. Reading them takes today's payments (≈ 10–20 ms at
/// 30 000 a day, measured over 10 M orders); within this a page view reads only the rollup, so admins opening
/// the overview together do not each read the day again. The page's "today" is at most this old.
pub const LIVE_FRESH_SECONDS: i64 = 10;
/// Apps whose live figures a node keeps at once; past it the cache starts again (a bound, not an eviction policy).
const LIVE_CACHE_MAX: usize = 10_000;

/// Today's live figures per app and mode as last read: `(read at, today, figures)`.
#[derive(Default)]
pub(crate) struct LiveFigures(Mutex<HashMap<Scope, (i64, i64, Figures)>>);

impl LiveFigures {
    fn fresh(&self, scope: &Scope, today: i64, now: i64) -> Option<Figures> {
        let cache = self.0.lock().ok()?;
        let (read_at, day, figures) = cache.get(scope)?;
        let fresh = *day == today && (0..LIVE_FRESH_SECONDS).contains(&now.saturating_sub(*read_at));
        fresh.then(|| figures.clone())
    }

    fn keep(&self, scope: &Scope, today: i64, now: i64, figures: &Figures) {
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= LIVE_CACHE_MAX {
                cache.clear();
            }
            cache.insert(scope.clone(), (now, today, figures.clone()));
        }
    }
}

/// Money of one group (a channel family or a face) over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub paid_count: i64,
    pub paid_amount: i64,
    pub refund_count: i64,
    pub refund_amount: i64,
}

impl Totals {
    fn add(&mut self, f: &Figure) {
        self.paid_count = self.paid_count.saturating_add(f.paid_count);
        self.paid_amount = self.paid_amount.saturating_add(f.paid_amount);
        self.refund_count = self.refund_count.saturating_add(f.refund_count);
        self.refund_amount = self.refund_amount.saturating_add(f.refund_amount);
    }
}

/// One period of the overview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Period {
    /// Days in it, today included (1, 7, 30).
    pub days: i64,
    pub total: Totals,
    pub by_channel: BTreeMap<String, Totals>,
    pub by_face: BTreeMap<String, Totals>,
    pub orders: i64,
    pub paid_orders: i64,
}

impl Period {
    /// Paid orders per thousand orders created in the period (`None` without orders): integers, no floats.
    pub fn success_permille(&self) -> Option<i64> {
        (self.orders > 0).then(|| self.paid_orders.saturating_mul(1000) / self.orders)
    }

    fn add(&mut self, figures: &Figures) {
        for f in &figures.money {
            self.total.add(f);
            self.by_channel.entry(channel_family(&f.channel).to_string()).or_default().add(f);
            self.by_face.entry(f.face.clone()).or_default().add(f);
        }
        self.orders = self.orders.saturating_add(figures.orders);
        self.paid_orders = self.paid_orders.saturating_add(figures.paid_orders);
    }
}

/// A channel's family: `wx_pub_qr` → `wx`, `alipay_wap` → `alipay`, `balance` → `balance`.
pub fn channel_family(channel: &str) -> &str {
    channel.split('_').next().unwrap_or(channel)
}

/// Figures of live channels merged into their families (what the rollup stores).
fn by_family(figures: Figures) -> Figures {
    let mut merged: BTreeMap<(String, String), Figure> = BTreeMap::new();
    for f in figures.money {
        let key = (channel_family(&f.channel).to_string(), f.face.clone());
        let m =
            merged.entry(key.clone()).or_insert_with(|| Figure { channel: key.0, face: key.1, ..Figure::default() });
        m.paid_count = m.paid_count.saturating_add(f.paid_count);
        m.paid_amount = m.paid_amount.saturating_add(f.paid_amount);
        m.refund_count = m.refund_count.saturating_add(f.refund_count);
        m.refund_amount = m.refund_amount.saturating_add(f.refund_amount);
    }
    Figures { money: merged.into_values().collect(), ..figures }
}

impl Paygate {
    /// Today, the last 7 days and the last 30 days (each including today) of the caller's app and mode.
    pub async fn console_overview(&self, who: &ConsoleCaller) -> Result<[Period; 3], Problem> {
        who.require(Permission::Read)?;
        let scope = &who.caller.scope;
        let now = self.now();
        let today = BillDate::of(now).start();
        let live = match self.console.live.fresh(scope, today, now) {
            Some(live) => live,
            None => {
                let live = self.store.live_figures(scope, today, today.saturating_add(DAY)).await?;
                self.console.live.keep(scope, today, now, &live);
                live
            }
        };
        let mut periods = [1, 7, OVERVIEW_DAYS].map(|days| Period { days, ..Period::default() });
        for period in &mut periods {
            period.add(&live);
            if period.days > 1 {
                let from = today.saturating_sub((period.days - 1).saturating_mul(DAY));
                period.add(&self.store.rolled_up_figures(scope, from, today).await?);
            }
        }
        Ok(periods)
    }

    /// Rolls up finished days of the last [`OVERVIEW_DAYS`] not rolled up yet, at most `max_days` of them
    /// (newest first: yesterday matters most; a new install catches up on older days over later passes) for
    /// every app and mode; the number rolled up. Called by the worker's housekeeping; safe
    /// on several nodes at once (the same upserts).
    pub async fn console_rollup(&self, max_days: usize) -> Result<usize, Problem> {
        let today = BillDate::of(self.now()).start();
        let first = today.saturating_sub(OVERVIEW_DAYS.saturating_mul(DAY));
        let done = self.store.rolled_up_days(first).await?;
        let due: Vec<i64> = (1..=OVERVIEW_DAYS)
            .map(|i| today.saturating_sub(i.saturating_mul(DAY)))
            .filter(|day| *day < today && !done.contains(day))
            .take(max_days)
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let scopes = self.store.app_scopes().await?;
        for day in &due {
            for scope in &scopes {
                let figures = by_family(self.store.live_figures(scope, *day, day.saturating_add(DAY)).await?);
                if !figures.money.is_empty() || figures.orders > 0 {
                    self.store.save_day(scope, *day, &figures).await?;
                }
            }
            self.store.finish_day(*day).await?;
        }
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_figures_are_kept_for_ten_seconds_of_the_same_day() {
        let cache = LiveFigures::default();
        let scope = Scope { app_id: "app_a".into(), mode: paygate_domain::Mode::Test };
        let figures = Figures { orders: 3, ..Figures::default() };
        cache.keep(&scope, 0, 100, &figures);
        assert_eq!(cache.fresh(&scope, 0, 109), Some(figures.clone()));
        assert_eq!(cache.fresh(&scope, 0, 110), None, "ten seconds old");
        assert_eq!(cache.fresh(&scope, 0, 99), None, "a clock that went back reads again");
        assert_eq!(cache.fresh(&scope, DAY, 101), None, "another day");
        let live = Scope { mode: paygate_domain::Mode::Live, ..scope.clone() };
        assert_eq!(cache.fresh(&live, 0, 101), None, "another mode");
    }

    #[test]
    fn families_and_rates() {
        assert_eq!(channel_family("wx_pub_qr"), "wx");
        assert_eq!(channel_family("alipay"), "alipay");
        let p = Period { orders: 3, paid_orders: 2, ..Period::default() };
        assert_eq!(p.success_permille(), Some(666));
        assert_eq!(Period::default().success_permille(), None);
    }
}
