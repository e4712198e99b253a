//! Micro-benchmarks of the per-scrape and per-page hot paths:
//!
//! - `render/N`: the snapshot families for N invitations (one source);
//! - `metrics_body/N`: the whole `/metrics` body (render + the exporter's registry);
//! - `gzip/10000`: compressing the 10,000-invitation body as `/metrics` does;
//! - `template/*` (100,000 invitations, default budget): what a scrape wave pays
//!   per second (`fill`: the `expires_in` values and expiring counts, and
//!   `deflate_fill`: compressing them), against the whole render (`render`) and
//!   making the template (`new`, once per refresh while scrapes keep coming);
//! - `sign/*`: signing one list request;
//! - `registry/*`: the exporter's own registry (with and without `process_*`);
//! - `parse/*`: parsing one full list page (the wire functions the clients call):
//!   100 Alibaba invitations, 2,000 Huawei ones.
//!
//! Run with `cargo bench --bench hot`; `cargo test --benches` runs each once.

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use handshake_exporter::cache::{Snapshot, SourceView};
use handshake_exporter::config::Config;
use handshake_exporter::http;
use handshake_exporter::metrics::ExporterMetrics;
use handshake_exporter::model::Provider;
use handshake_exporter::provider::alibaba::{self, sign as ali_sign, wire as ali_wire};
use handshake_exporter::provider::huawei::{self, sign as hw_sign, wire as hw_wire};
use handshake_exporter::render::{self, RenderOptions};
use handshake_exporter::sim::{Dataset, data};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn options() -> RenderOptions {
    let c = Config::with_sources(Vec::new());
    RenderOptions {
        per_invitation: c.per_invitation,
        target_label: c.target_label,
        windows: c.expiring_windows,
        max_invitation_series: c.max_invitation_series,
    }
}

/// One source holding `n` generated invitations, as the cache hands it to `render`.
fn view(n: usize) -> SourceView {
    let now = Utc::now();
    let name: Arc<str> = Arc::from("huawei-sent");
    let mut handshakes = data::generate(Dataset::HuaweiSent, n, 7, now);
    for h in &mut handshakes {
        h.source = name.clone();
    }
    let fetched_at = now.timestamp() as f64;
    SourceView {
        name,
        provider: Provider::Huawei,
        snapshot: Some(Arc::new(Snapshot {
            handshakes,
            fetched_at,
        })),
        up: true,
        last_success: Some(fetched_at),
        last_duration: Some(Duration::from_millis(180)),
        last_error: None,
        failing_since: None,
        refreshing: false,
        generation: 1,
    }
}

fn now() -> f64 {
    Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Registry as a running exporter has it: process metrics and one source's counters.
fn registry() -> ExporterMetrics {
    let m = ExporterMetrics::new(true);
    m.init_source(Provider::Huawei, "huawei-sent");
    m.api_requests
        .with_label_values(&["huawei", "huawei-sent", huawei::ACTION_LIST_SENT, "200"])
        .inc_by(5);
    m
}

fn bench_render(c: &mut Criterion) {
    let opts = options();
    let mut group = c.benchmark_group("render");
    for n in SIZES {
        let views = [view(n)];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &views, |b, views| {
            b.iter(|| {
                let mut out = Vec::new();
                render::render(&mut out, black_box(views), now(), &opts);
                out
            })
        });
    }
    group.finish();

    let metrics = registry();
    let mut group = c.benchmark_group("metrics_body");
    for n in SIZES {
        let views = [view(n)];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &views, |b, views| {
            b.iter(|| http::metrics_body(black_box(views), now(), &opts, &metrics, None))
        });
    }
    group.finish();

    // The exporter's own registry alone, with and without the process collector.
    let mut group = c.benchmark_group("registry");
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(16_384);
            metrics.encode_into(&mut out);
            out
        })
    });
    let bare = ExporterMetrics::new(false);
    bare.init_source(Provider::Huawei, "huawei-sent");
    group.bench_function("encode_without_process", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(16_384);
            bare.encode_into(&mut out);
            out
        })
    });
    group.finish();

    // 100,000 invitations: the whole render against the template's fill per second.
    let views = [view(100_000)];
    let mut group = c.benchmark_group("template");
    group.sample_size(10);
    group.bench_function("render/100000", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            render::render(&mut out, black_box(&views), now(), &opts);
            out
        })
    });
    group.bench_function("new/100000", |b| {
        b.iter(|| render::Template::new(black_box(&views), &opts))
    });
    let template = render::Template::new(&views, &opts);
    group.bench_function("fill/100000", |b| {
        b.iter(|| template.fill(black_box(now()).floor()))
    });
    let filled = template.fill(now().floor());
    group.bench_function("deflate_fill/100000", |b| {
        b.iter(|| {
            filled
                .parts()
                .map(|p| render::deflate(black_box(p)).expect("deflate into a Vec"))
        })
    });
    group.finish();

    let body = http::metrics_body(&[view(10_000)], now(), &opts, &metrics, None);
    let mut group = c.benchmark_group("gzip");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("10000", |b| {
        b.iter(|| http::gzip(black_box(&body)).expect("gzip into a Vec"))
    });
    group.finish();
}

fn bench_sign(c: &mut Criterion) {
    let mut group = c.benchmark_group("sign");
    let query = vec![
        ("limit".to_string(), "2000".to_string()),
        ("marker".to_string(), "mk/2000+0123456789ab=~ é".to_string()),
    ];
    let headers = vec![
        (
            "Host".to_string(),
            "organizations.myhuaweicloud.com".to_string(),
        ),
        (
            hw_sign::DATE_HEADER.to_string(),
            "20240501T120000Z".to_string(),
        ),
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "X-Domain-Id".to_string(),
            "3f1b6a9c2e4d4f7b8a0c1d2e3f4a5b6c".to_string(),
        ),
    ];
    group.bench_function("huawei_sdk_hmac_sha256", |b| {
        b.iter(|| {
            hw_sign::sign(
                &hw_sign::RequestToSign {
                    method: "GET",
                    path: huawei::PATH_LIST_SENT,
                    query: black_box(&query),
                    headers: black_box(&headers),
                    body: b"",
                },
                "HWDEMOAK000000000001",
                "demo-huawei-secret-not-real",
            )
            .expect("valid date header")
        })
    });
    let query = [("PageNumber", "2"), ("PageSize", "100")];
    let headers = [
        ("host", "resourcemanager.aliyuncs.com"),
        ("x-acs-action", alibaba::ACTION_LIST_FOR_RESOURCE_DIRECTORY),
        ("x-acs-version", alibaba::API_VERSION),
        ("x-acs-date", "2024-05-01T12:00:00Z"),
        ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
        ("x-acs-content-sha256", ali_sign::EMPTY_BODY_SHA256),
    ];
    group.bench_function("alibaba_acs3_hmac_sha256", |b| {
        b.iter(|| {
            ali_sign::sign_acs3(black_box(&ali_sign::Acs3Request {
                method: "POST",
                path: "/",
                query: &query,
                headers: &headers,
                body: b"",
                access_key_id: "LTAIdemoAlibaba00001",
                access_key_secret: "demo-alibaba-secret-not-real",
            }))
        })
    });
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let now = Utc::now();
    let mut group = c.benchmark_group("parse");
    let items = data::generate(Dataset::HuaweiSent, 2_000, 11, now);
    let page = serde_json::json!({
        "handshakes": items.iter().map(handshake_exporter::sim::huawei::handshake_dto).collect::<Vec<_>>(),
        "page_info": {"next_marker": "mk/2000+0123456789ab=~ é", "current_count": items.len()},
    });
    let body = serde_json::to_vec(&page).expect("serialise a JSON value");
    let source: Arc<str> = Arc::from("huawei-sent");

    let ali_items = data::generate(Dataset::AlibabaResourceDirectory, 100, 12, now);
    let ali_page = serde_json::json!({
        "RequestId": "9B34724D-54B0-4A51-B34D-4512372FE1BE",
        "TotalCount": 1000,
        "PageNumber": 2,
        "PageSize": 100,
        "Handshakes": {"Handshake": ali_items.iter().map(handshake_exporter::sim::alibaba::handshake_json).collect::<Vec<_>>()},
    });
    let ali_body = serde_json::to_vec(&ali_page).expect("serialise a JSON value");
    group.throughput(Throughput::Elements(ali_items.len() as u64));
    group.bench_function("alibaba_page_100", |b| {
        b.iter(|| ali_wire::parse_list_page(black_box(&ali_body)).expect("valid page"))
    });
    group.bench_function("alibaba_page_100_to_model", |b| {
        b.iter(|| {
            let page = ali_wire::parse_list_page(black_box(&ali_body)).expect("valid page");
            page.items
                .into_iter()
                .filter_map(|item| item.into_handshake(source.clone()))
                .count()
        })
    });

    group.throughput(Throughput::Elements(items.len() as u64));
    group.bench_function("huawei_page_2000", |b| {
        b.iter(|| {
            hw_wire::parse_list(huawei::ACTION_LIST_SENT, black_box(&body)).expect("valid page")
        })
    });
    group.bench_function("huawei_page_2000_to_model", |b| {
        b.iter(|| {
            let page = hw_wire::parse_list(huawei::ACTION_LIST_SENT, black_box(&body))
                .expect("valid page");
            page.handshakes
                .into_iter()
                .filter_map(|dto| hw_wire::to_handshake(dto, &source))
                .count()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short but stable enough on a shared 2-core machine.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench_render, bench_sign, bench_parse
}
criterion_main!(benches);
