//! W3C Trace Context: server spans that continue an incoming `traceparent` and
//! answer with one, and the `traceparent` of outgoing requests.
//!
//! With tracing off every span here is disabled and each function returns
//! at its first branch.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Query parameters whose values never go into a span.
const SECRET_PARAMS: &[&str] = &["password", "passwd", "secret", "token", "key", "auth"];

/// Axum middleware: a server span per request, named `METHOD ROUTE` with the
/// HTTP semantic conventions' attributes, child of the caller's span when the
/// request has a valid `traceparent`; the response carries this span's
/// `traceparent`. Layer it outermost so that the span covers every other layer.
pub async fn server_span(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http request",
        otel.name = Empty,
        otel.kind = "server",
        http.request.method = Empty,
        http.route = Empty,
        url.path = Empty,
        url.query = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    if span.is_disabled() {
        return next.run(request).await;
    }
    describe(&span, &request);
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    if parent.span().span_context().is_valid() {
        // Fails only when the span was already started, which it cannot be yet.
        let _ = span.set_parent(parent);
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    inject(&span, response.headers_mut());
    response
}

/// Records the request's method, route, path and query on its span.
fn describe(span: &Span, request: &Request) {
    let method = request.method().as_str();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    match route {
        Some(route) => {
            span.record("otel.name", format!("{method} {route}"));
            span.record("http.route", route);
        }
        // Semantic conventions: without a route, the name is the method alone.
        None => {
            span.record("otel.name", method);
        }
    }
    span.record("http.request.method", method);
    span.record("url.path", request.uri().path());
    if let Some(query) = request.uri().query() {
        span.record("url.query", redact(query));
    }
}

/// The query with the value of every parameter named like a secret replaced.
fn redact(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// Writes `span`'s `traceparent` into `headers` (nothing when tracing is off).
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// The trace id in a `traceparent` header, as 32 hex digits.
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// A finished span that later work (the write of a batch) follows from,
/// without keeping that span open.
#[derive(Debug, Clone)]
pub struct SpanLink(SpanContext);

impl SpanLink {
    /// The link to `span` if it is sampled: an unsampled span is not exported,
    /// and a link to it would lead nowhere.
    pub fn to(span: &Span) -> Option<SpanLink> {
        if span.is_disabled() {
            return None;
        }
        let context = span.context();
        let span_context = context.span().span_context().clone();
        (span_context.is_valid() && span_context.is_sampled()).then_some(SpanLink(span_context))
    }

    /// Makes `span` a child of the first link and links it to the others, so
    /// that it shows in the trace of what it carries. Call before entering it.
    pub fn follow(span: &Span, links: &[SpanLink]) {
        let Some((first, rest)) = links.split_first() else {
            return;
        };
        let parent = opentelemetry::Context::new().with_remote_span_context(first.0.clone());
        let _ = span.set_parent(parent);
        for link in rest {
            span.add_link(link.0.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use opentelemetry::trace::SpanKind;
    use tower::ServiceExt;

    use super::*;
    use crate::trace_capture::{Capture, attribute};

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER: &str = "00f067aa0ba902b7";

    fn app() -> Router {
        Router::new()
            .route("/things/{id}", get(|| async { "thing" }))
            .route(
                "/broken",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .layer(axum::middleware::from_fn(server_span))
    }

    async fn get_with(uri: &str, traceparent: Option<&str>) -> Response {
        let mut request = Request::builder().uri(uri);
        if let Some(tp) = traceparent {
            request = request.header("traceparent", tp);
        }
        app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_request_continues_the_callers_trace_and_answers_with_it() {
        let capture = Capture::start();
        let response = get_with(
            "/things/7?limit=5&token=abc",
            Some(&format!("00-{TRACE}-{CALLER}-01")),
        )
        .await;
        assert_eq!(trace_id(response.headers()).as_deref(), Some(TRACE));
        let spans = capture.spans();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let span = &spans[0];
        assert_eq!(span.name, "GET /things/{id}");
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(span.span_context.trace_id().to_string(), TRACE);
        assert_eq!(span.parent_span_id.to_string(), CALLER);
        assert_eq!(
            attribute(span, "http.route").as_deref(),
            Some("/things/{id}")
        );
        assert_eq!(
            attribute(span, "http.request.method").as_deref(),
            Some("GET")
        );
        assert_eq!(
            attribute(span, "http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(
            attribute(span, "url.query").as_deref(),
            Some("limit=5&token=REDACTED")
        );
        let out = response.headers()["traceparent"].to_str().unwrap();
        assert!(
            out.ends_with(&format!("{}-01", span.span_context.span_id())),
            "{out}"
        );
    }

    #[tokio::test]
    async fn a_request_without_a_traceparent_starts_a_trace() {
        let capture = Capture::start();
        let response = get_with("/nowhere", None).await;
        let id = trace_id(response.headers()).expect("a traceparent");
        let spans = capture.spans();
        assert_eq!(spans[0].span_context.trace_id().to_string(), id);
        assert_eq!(spans[0].name, "GET", "no route: the method alone");
        assert_eq!(spans[0].status, opentelemetry::trace::Status::Unset);
    }

    #[tokio::test]
    async fn a_server_error_sets_the_span_status() {
        let capture = Capture::start();
        get_with("/broken", None).await;
        let spans = capture.spans();
        assert!(matches!(
            spans[0].status,
            opentelemetry::trace::Status::Error { .. }
        ));
    }

    #[tokio::test]
    async fn with_tracing_off_nothing_is_added() {
        let response = get_with("/things/7", Some(&format!("00-{TRACE}-{CALLER}-01"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("traceparent").is_none());
    }

    #[test]
    fn secrets_in_the_query_are_redacted() {
        assert_eq!(
            redact("target=gometr&api_key=abc&limit=5&Password=x&cursor=Zz=="),
            "target=gometr&api_key=REDACTED&limit=5&Password=REDACTED&cursor=Zz=="
        );
    }
}
