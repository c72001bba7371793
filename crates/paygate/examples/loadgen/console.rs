//! `loadgen console-rollup DATABASE`: the console overview's daily rollup exactly as the worker's housekeeping
//! runs it (`Paygate::console_rollup`, [`OVERVIEW_DAYS_PER_PASS`] days a pass, passes repeated until no day is
//! due), timed — and nothing else the worker does (its expiry sweep would change the kept list data).

use paygate_core::{Policy, SystemClock};
use paygate_worker::OVERVIEW_DAYS_PER_PASS;
use std::sync::Arc;
use std::time::Instant;

/// Prints `{"name":"console_rollup","days":…,"passes":…,"ms":…,"slowest_pass_ms":…}`.
pub fn rollup(database: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    rt.block_on(async {
        let app = paygate::start_configured(database, 4, Arc::new(SystemClock), Policy::default())
            .await
            .unwrap_or_else(|p| panic!("{database}: {p}"));
        let started = Instant::now();
        let (mut days, mut passes, mut slowest) = (0, 0, 0.0f64);
        loop {
            let pass = Instant::now();
            let done = app.console_rollup(OVERVIEW_DAYS_PER_PASS).await.unwrap_or_else(|p| panic!("rollup: {p}"));
            if done == 0 {
                break;
            }
            slowest = slowest.max(pass.elapsed().as_secs_f64() * 1000.0);
            (days, passes) = (days + done, passes + 1);
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{{\"name\":\"console_rollup\",\"days\":{days},\"passes\":{passes},\"ms\":{ms:.1},\
             \"slowest_pass_ms\":{slowest:.1}}}"
        );
    });
}
