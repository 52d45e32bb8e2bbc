//! The control API, shaped like Toxiproxy's: proxies (one per link) and their
//! toxics, as JSON over HTTP, so Toxiproxy's users and clients feel at home.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::proxy::Proxy;
use crate::toxic::{self, Toxic};

/// How long taking a link down may wait for its open connections to close.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// A proxy as the control API takes it to create one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProxy {
    pub name: String,
    /// `host:port` to listen on; port 0 picks one.
    pub listen: String,
    /// `host:port` of the server, resolved on each connection.
    pub upstream: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A proxy as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProxyView {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    pub toxics: Vec<Toxic>,
}

/// Why a control request failed; the body is Toxiproxy's `{error, status}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("proxy {0:?} not found")]
    NoProxy(String),
    #[error("toxic {toxic:?} not found on proxy {proxy:?}")]
    NoToxic { proxy: String, toxic: String },
    #[error("proxy {0:?} already exists")]
    ProxyExists(String),
    #[error("toxic {0:?} already exists")]
    ToxicExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("proxy {0:?} is down but its connections did not close within {DRAIN_WITHIN:?}")]
    Undrained(String),
}

/// A JSON request body, read whatever its `Content-Type` says, as Toxiproxy
/// does: `curl -d '{"enabled":false}'` sends `application/x-www-form-urlencoded`,
/// and axum's `Json` would refuse it with a plain-text 415. A body that is not
/// the JSON expected is a 400 in Toxiproxy's `{error, status}` shape.
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::Invalid(format!("cannot read the request body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::Invalid(format!("the body is not the JSON expected: {e}")))
    }
}

/// Routes and methods the API does not have, in the same error shape.
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let status = StatusCode::NOT_FOUND;
    let body = serde_json::json!({"error": format!("no route {method} {}", uri.path()), "status": status.as_u16()});
    (status, Json(body)).into_response()
}

async fn no_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let body = serde_json::json!({"error": format!("{} does not take {method}", uri.path()), "status": status.as_u16()});
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::NoProxy(_) | ApiError::NoToxic { .. } => StatusCode::NOT_FOUND,
            ApiError::ProxyExists(_) | ApiError::ToxicExists(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Undrained(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = serde_json::json!({"error": self.to_string(), "status": status.as_u16()});
        (status, Json(body)).into_response()
    }
}

/// One proxy with its toxics, in the order they were added.
struct Entry {
    proxy: Proxy,
    enabled: bool,
    toxics: Vec<Toxic>,
}

impl Entry {
    fn view(&self, name: &str) -> ProxyView {
        ProxyView {
            name: name.to_owned(),
            listen: self.proxy.address().to_string(),
            upstream: self.proxy.upstream().to_owned(),
            enabled: self.enabled,
            toxics: self.toxics.clone(),
        }
    }

    /// Puts the toxics and `enabled` in force; when the link goes down, returns
    /// once its open connections are closed.
    async fn apply(&self, name: &str) -> Result<(), ApiError> {
        self.proxy
            .set_streams(toxic::streams(self.enabled, &self.toxics));
        if !self.enabled && !self.proxy.drained(DRAIN_WITHIN).await {
            return Err(ApiError::Undrained(name.to_owned()));
        }
        Ok(())
    }
}

type Proxies = Arc<Mutex<BTreeMap<String, Entry>>>;

/// The control API, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    proxies: Proxies,
}

impl Application {
    /// Binds the control API on `listen` (port 0 picks one) and starts `initial` proxies.
    pub async fn build(listen: SocketAddr, initial: Vec<NewProxy>) -> Result<Application, String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listen on {listen}: {e}"))?;
        let proxies = Proxies::default();
        for new in initial {
            create(&proxies, new).await.map_err(|e| e.to_string())?;
        }
        Ok(Application { listener, proxies })
    }

    /// Where the control API listens.
    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.proxies)).await
    }
}

fn router(proxies: Proxies) -> Router {
    Router::new()
        .route("/version", get(|| async { "metrtest-faultproxy" }))
        .route("/health", get(|| async { "ok" }))
        .route("/reset", post(reset))
        .route("/proxies", get(list).post(create_proxy))
        .route(
            "/proxies/{proxy}",
            get(show).post(update_proxy).delete(delete_proxy),
        )
        .route("/proxies/{proxy}/toxics", get(list_toxics).post(add_toxic))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(show_toxic).post(update_toxic).delete(delete_toxic),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(proxies)
}

async fn create(proxies: &Proxies, new: NewProxy) -> Result<ProxyView, ApiError> {
    let mut all = proxies.lock().await;
    if all.contains_key(&new.name) {
        return Err(ApiError::ProxyExists(new.name));
    }
    let listen = tokio::net::lookup_host(&new.listen)
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| ApiError::Invalid(format!("listen {:?} is not host:port", new.listen)))?;
    let proxy = Proxy::start(listen, new.upstream)
        .await
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let entry = Entry {
        proxy,
        enabled: new.enabled,
        toxics: Vec::new(),
    };
    entry.apply(&new.name).await?;
    let view = entry.view(&new.name);
    all.insert(new.name, entry);
    Ok(view)
}

async fn list(State(proxies): State<Proxies>) -> Json<BTreeMap<String, ProxyView>> {
    let all = proxies.lock().await;
    Json(all.iter().map(|(n, e)| (n.clone(), e.view(n))).collect())
}

async fn create_proxy(
    State(proxies): State<Proxies>,
    Body(new): Body<NewProxy>,
) -> Result<(StatusCode, Json<ProxyView>), ApiError> {
    Ok((StatusCode::CREATED, Json(create(&proxies, new).await?)))
}

async fn show(
    State(proxies): State<Proxies>,
    Path(name): Path<String>,
) -> Result<Json<ProxyView>, ApiError> {
    let all = proxies.lock().await;
    let entry = all.get(&name).ok_or(ApiError::NoProxy(name.clone()))?;
    Ok(Json(entry.view(&name)))
}

/// Only `enabled` changes; listen and upstream are fixed for a proxy's life.
async fn update_proxy(
    State(proxies): State<Proxies>,
    Path(name): Path<String>,
    Body(update): Body<Map<String, Value>>,
) -> Result<Json<ProxyView>, ApiError> {
    let mut all = proxies.lock().await;
    let entry = all.get_mut(&name).ok_or(ApiError::NoProxy(name.clone()))?;
    let view = entry.view(&name);
    for (key, value) in &update {
        match (key.as_str(), value) {
            ("enabled", Value::Bool(enabled)) => entry.enabled = *enabled,
            ("name", Value::String(v)) if *v == view.name => {}
            ("listen", Value::String(v)) if *v == view.listen => {}
            ("upstream", Value::String(v)) if *v == view.upstream => {}
            ("enabled", _) => return Err(ApiError::Invalid("enabled must be a boolean".into())),
            _ => {
                return Err(ApiError::Invalid(format!(
                    "{key} cannot change here; delete the proxy and create it again"
                )));
            }
        }
    }
    entry.apply(&name).await?;
    Ok(Json(entry.view(&name)))
}

async fn delete_proxy(
    State(proxies): State<Proxies>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let removed = proxies.lock().await.remove(&name);
    removed.ok_or(ApiError::NoProxy(name))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every proxy enabled and without toxics.
async fn reset(State(proxies): State<Proxies>) -> Result<StatusCode, ApiError> {
    let mut all = proxies.lock().await;
    for (name, entry) in all.iter_mut() {
        entry.enabled = true;
        entry.toxics.clear();
        entry.apply(name).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_toxics(
    State(proxies): State<Proxies>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Toxic>>, ApiError> {
    let all = proxies.lock().await;
    let entry = all.get(&name).ok_or(ApiError::NoProxy(name))?;
    Ok(Json(entry.toxics.clone()))
}

async fn add_toxic(
    State(proxies): State<Proxies>,
    Path(name): Path<String>,
    Body(toxic): Body<Toxic>,
) -> Result<Json<Toxic>, ApiError> {
    let toxic = toxic
        .checked()
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let mut all = proxies.lock().await;
    let entry = all.get_mut(&name).ok_or(ApiError::NoProxy(name.clone()))?;
    if entry.toxics.iter().any(|t| t.name == toxic.name) {
        return Err(ApiError::ToxicExists(toxic.name));
    }
    entry.toxics.push(toxic.clone());
    entry.apply(&name).await?;
    Ok(Json(toxic))
}

/// Looks a toxic up: its proxy's entry and its index.
fn find<'a>(
    all: &'a mut BTreeMap<String, Entry>,
    proxy: &str,
    toxic: &str,
) -> Result<(&'a mut Entry, usize), ApiError> {
    let entry = all
        .get_mut(proxy)
        .ok_or(ApiError::NoProxy(proxy.to_owned()))?;
    let index = entry
        .toxics
        .iter()
        .position(|t| t.name == toxic)
        .ok_or_else(|| ApiError::NoToxic {
            proxy: proxy.to_owned(),
            toxic: toxic.to_owned(),
        })?;
    Ok((entry, index))
}

async fn show_toxic(
    State(proxies): State<Proxies>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<Json<Toxic>, ApiError> {
    let mut all = proxies.lock().await;
    let (entry, index) = find(&mut all, &proxy, &toxic)?;
    Ok(Json(entry.toxics[index].clone()))
}

async fn update_toxic(
    State(proxies): State<Proxies>,
    Path((proxy, toxic)): Path<(String, String)>,
    Body(update): Body<Map<String, Value>>,
) -> Result<Json<Toxic>, ApiError> {
    let mut all = proxies.lock().await;
    let (entry, index) = find(&mut all, &proxy, &toxic)?;
    let updated = entry.toxics[index]
        .updated(&update)
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    entry.toxics[index] = updated.clone();
    entry.apply(&proxy).await?;
    Ok(Json(updated))
}

async fn delete_toxic(
    State(proxies): State<Proxies>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut all = proxies.lock().await;
    let (entry, index) = find(&mut all, &proxy, &toxic)?;
    entry.toxics.remove(index);
    entry.apply(&proxy).await?;
    Ok(StatusCode::NO_CONTENT)
}
