//! Prometheus metrics: requests, latencies, open connections, and the store's commits.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::{AppError, AppResult};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

pub struct HttpMetrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub open_connections: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl HttpMetrics {
    pub fn new(store: &crate::storage::StoreMetrics) -> Arc<HttpMetrics> {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let open_connections = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "allhands_http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "allhands_http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        registry.register(
            "allhands_http_open_connections",
            "Client connections currently open",
            open_connections.clone(),
        );
        store.register(&mut registry);
        Arc::new(HttpMetrics {
            registry,
            requests,
            latency,
            open_connections,
        })
    }

    pub fn render(&self) -> AppResult<String> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(AppError::internal)?;
        Ok(out)
    }
}

/// Lives in a connection's extensions; counts the connection while it is open.
pub struct ConnectionGuard(Gauge<i64, std::sync::atomic::AtomicI64>);

impl ConnectionGuard {
    pub fn new(gauge: &Gauge<i64, std::sync::atomic::AtomicI64>) -> Self {
        gauge.inc();
        ConnectionGuard(gauge.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
