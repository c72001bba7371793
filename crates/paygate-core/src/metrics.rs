//! What an operator scrapes from `GET /metrics` (Prometheus text format): requests by route and
//! status with their latency, deliveries by result, worker sweep time, expiries, and — read
//! from the store at scrape time — the database pool and the outbox. One registry per process,
//! held by [`crate::Paygate`], so the HTTP faces and the worker count into the same place.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::atomic::AtomicI64;

/// A label value: the route templates and method names are static, so counting a request copies
/// no text (an unusual method's name is owned).
pub type Label = Cow<'static, str>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: Label,
    /// The route template (`/v1/orders/*`), never a raw path: ids must not become labels.
    pub route: Label,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: Label,
    pub route: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `delivered`, `retrying` or `failed`.
    pub result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: HistogramFamily<RouteLabels>,
    pub deliveries: Family<ResultLabels, Counter>,
    pub sweep_seconds: Histogram,
    pub expired_orders: Counter,
    pub worker_errors: Counter,
    pub db_pool_size: Gauge,
    pub db_pool_in_use: Gauge,
    pub db_pool_idle: Gauge,
    pub db_pool_waiting: Gauge,
    pub outbox_pending: Gauge,
    pub outbox_oldest_pending_age_seconds: Gauge<i64, AtomicI64>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("paygate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        let request_seconds: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "Time to answer a request", request_seconds.clone());
        let deliveries = Family::<ResultLabels, Counter>::default();
        registry.register("webhook_deliveries", "Webhook delivery attempts by result", deliveries.clone());
        let sweep_seconds = latency_histogram();
        registry.register("worker_sweep_duration_seconds", "Time of one worker sweep", sweep_seconds.clone());
        let expired_orders = Counter::default();
        registry.register("orders_expired", "Orders closed because they expired", expired_orders.clone());
        let worker_errors = Counter::default();
        registry.register(
            "worker_item_errors",
            "Worker items that failed (retried on a later pass)",
            worker_errors.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let db_pool_size = gauge(&mut registry, "db_pool_size", "Database connections open");
        let db_pool_in_use = gauge(&mut registry, "db_pool_in_use", "Database connections in use");
        let db_pool_idle = gauge(&mut registry, "db_pool_idle", "Database connections idle");
        let db_pool_waiting = gauge(&mut registry, "db_pool_waiting", "Requests waiting for a database connection");
        let outbox_pending = gauge(&mut registry, "outbox_pending", "Webhook deliveries not yet delivered or given up");
        let outbox_oldest_pending_age_seconds = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending webhook delivery",
            outbox_oldest_pending_age_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            deliveries,
            sweep_seconds,
            expired_orders,
            worker_errors,
            db_pool_size,
            db_pool_in_use,
            db_pool_idle,
            db_pool_waiting,
            outbox_pending,
            outbox_oldest_pending_age_seconds,
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, method: impl Into<Label>, route: impl Into<Label>, status: u16, seconds: f64) {
        let (method, route) = (method.into(), route.into());
        self.request_seconds
            .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
            .observe(seconds);
        self.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    }

    /// The registry in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl crate::Paygate {
    /// Reads the database pool and the outbox into their gauges, then renders everything.
    pub async fn metrics_text(&self) -> String {
        match self.store.pool_stats().await {
            Ok(p) => {
                self.metrics.db_pool_size.set(p.size);
                self.metrics.db_pool_in_use.set(p.in_use);
                self.metrics.db_pool_idle.set(p.idle);
                self.metrics.db_pool_waiting.set(p.waiting);
            }
            Err(problem) => tracing::warn!(%problem, "metrics: pool statistics unavailable"),
        }
        match self.store.outbox_stats(self.now()).await {
            Ok(o) => {
                self.metrics.outbox_pending.set(o.pending);
                self.metrics.outbox_oldest_pending_age_seconds.set(o.oldest_pending_age_seconds);
            }
            Err(problem) => tracing::warn!(%problem, "metrics: outbox statistics unavailable"),
        }
        self.metrics.render()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_prometheus_text() {
        let m = super::Metrics::default();
        m.observe_request("GET", "/v1/orders/*", 200, 0.003);
        m.deliveries.get_or_create(&super::ResultLabels { result: "delivered" }).inc();
        let text = m.render();
        assert!(
            text.contains(r#"paygate_http_requests_total{method="GET",route="/v1/orders/*",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("paygate_http_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains(r#"paygate_webhook_deliveries_total{result="delivered"} 1"#), "{text}");
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
