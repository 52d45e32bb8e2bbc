//! gometr's server spans continue the caller's trace (W3C Trace Context).

use metr_service::trace_capture::opentelemetry::trace::SpanKind;
use metr_service::trace_capture::{Capture, attribute};
use metr_service::trace_context::trace_id;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER: &str = "b7ad6b7169203331";

#[tokio::test]
async fn a_scrape_with_a_traceparent_joins_the_scrapers_trace() {
    let capture = Capture::start();
    let app = gometr::Application::build("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let response = metr_service::http_client::builder()
        .build()
        .unwrap()
        .get(format!("{base}/metrics"))
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(trace_id(response.headers()).as_deref(), Some(TRACE));
    let spans = capture.spans();
    let server = spans
        .iter()
        .find(|s| s.name == "GET /metrics")
        .unwrap_or_else(|| panic!("no GET /metrics span in {spans:#?}"));
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.span_context.trace_id().to_string(), TRACE);
    assert_eq!(server.parent_span_id.to_string(), CALLER);
    assert_eq!(attribute(server, "http.route").as_deref(), Some("/metrics"));
}
