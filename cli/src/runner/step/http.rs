//! `http`: one request to a service of the stack. A failure shows the
//! request as a `curl` command line, so that a developer can send it again
//! by hand (against a kept stack, the URL is still right).

use std::time::Instant;

use reqwest::Method;

use crate::runner::observation::{HttpObservation, Observation};
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::matcher::scalar_text;
use crate::scenario::model::{HttpAction, QueryValue};
use crate::scenario::template;

/// Sends the request; any response is an observation, only no response is trouble.
pub(super) async fn observe(h: &HttpAction, ctx: &StepContext<'_>) -> Result<Seen, Trouble> {
    let vars = &*ctx.vars;
    let base = ctx.stack.url_of(&h.service).map_err(Trouble::new)?;
    let path = template::render_str(&h.path, vars).map_err(Trouble::new)?;
    let mut query: Vec<(String, String)> = Vec::new();
    for (key, value) in &h.query.0 {
        let values = match value {
            QueryValue::One(v) => std::slice::from_ref(v),
            QueryValue::Many(vs) => vs.as_slice(),
        };
        for v in values {
            let rendered = template::render_value(v, vars).map_err(Trouble::new)?;
            query.push((key.clone(), scalar_text(&rendered)));
        }
    }
    let method = Method::from_bytes(h.method.as_str().as_bytes()).map_err(Trouble::new)?;
    let mut builder = ctx
        .http
        .request(method, format!("{base}{path}"))
        .query(&query)
        .timeout(ctx.request_timeout);
    for (name, value) in &h.headers.0 {
        builder = builder.header(
            name,
            template::render_str(value, vars).map_err(Trouble::new)?,
        );
    }
    if let Some(body) = &h.json {
        builder = builder.json(&template::render_value(body, vars).map_err(Trouble::new)?);
    }
    let request = builder
        .build()
        .map_err(|e| Trouble::new(format!("build the request: {e}")))?;
    let shown = format!("{} {}", request.method(), request.url());
    let curl = curl(&request);
    let sent = Instant::now();
    let response = ctx
        .http
        .execute(request)
        .await
        .map_err(|e| Trouble::no_response(&e, &shown).curl(curl.clone()))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.text().await.unwrap_or_default();
    Ok(Seen {
        request: shown,
        observation: Observation::Http(HttpObservation {
            status,
            headers,
            body,
            elapsed_ms: sent.elapsed().as_secs_f64() * 1000.0,
            curl,
        }),
    })
}

/// The request as sent, as a `curl` command line for a POSIX shell: the
/// method when curl would not infer it, the URL with its query encoded as
/// sent, each header, the body as is.
pub(crate) fn curl(request: &reqwest::Request) -> String {
    let body = request
        .body()
        .and_then(|b| b.as_bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let mut words = vec!["curl".to_owned()];
    match (request.method().as_str(), &body) {
        ("GET", None) | ("POST", Some(_)) => {}
        ("HEAD", None) => words.push("--head".into()),
        (method, _) => words.extend(["-X".into(), quote(method)]),
    }
    let url = request.url().as_str();
    // curl reads [] and {} in a URL as ranges and sets unless told not to.
    if url.contains(['[', ']', '{', '}']) {
        words.push("--globoff".into());
    }
    words.push(quote(url));
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        words.extend(["-H".into(), quote(&format!("{name}: {value}"))]);
    }
    if let Some(body) = body {
        // --data-raw: a body starting with @ is text, not a file to read.
        words.extend(["--data-raw".into(), quote(&body)]);
    }
    words.join(" ")
}

/// `text` as one shell word: as it is when no character in it means
/// anything to a shell, else in single quotes, inside which only `'` needs
/// care: it closes the quotes, adds an escaped `'`, and opens them again.
fn quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, url: &str) -> reqwest::RequestBuilder {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let client = metr_service::http_client::builder().build().unwrap();
        client.request(method, url)
    }

    /// What `sh` makes of `line`: its words, each ended by \x01 (`printf`).
    fn words_in_sh(line: &str) -> Vec<String> {
        let printed = line.replacen("curl", r"printf '%s\001'", 1);
        let out = std::process::Command::new("sh")
            .args(["-c", &printed])
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{printed}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut words: Vec<String> = text.split('\u{1}').map(str::to_owned).collect();
        assert_eq!(words.pop().as_deref(), Some(""), "{text:?}");
        words
    }

    #[test]
    fn a_get_is_its_url_with_the_query_encoded_as_sent() {
        let sent = request("GET", "http://127.0.0.1:8080/api/v1/checks")
            .query(&[("target", "gometr & co"), ("limit", "1")])
            .build()
            .unwrap();
        assert_eq!(
            curl(&sent),
            "curl 'http://127.0.0.1:8080/api/v1/checks?target=gometr+%26+co&limit=1'"
        );
    }

    #[test]
    fn a_json_body_goes_as_is_with_its_content_type_and_the_method_when_not_inferred() {
        let body = serde_json::json!({"extra_text": "it's \"quoted\"\nand ünïcode ✓"});
        let put = request("PUT", "http://127.0.0.1:1/control")
            .header("X-Token", "a b")
            .json(&body)
            .build()
            .unwrap();
        let line = curl(&put);
        assert!(
            line.starts_with("curl -X PUT http://127.0.0.1:1/control "),
            "{line}"
        );
        assert!(line.contains(" -H 'x-token: a b' "), "{line}");
        assert!(
            line.contains(" -H 'content-type: application/json' "),
            "{line}"
        );
        let words = words_in_sh(&line);
        assert_eq!(
            words.last().map(String::as_str),
            Some(r#"{"extra_text":"it's \"quoted\"\nand ünïcode ✓"}"#),
            "the shell gives back the body sent: {line}"
        );
        let post = request("POST", "http://127.0.0.1:1/x")
            .body("{}")
            .build()
            .unwrap();
        assert_eq!(curl(&post), "curl http://127.0.0.1:1/x --data-raw '{}'");
    }

    #[test]
    fn quotes_survive_the_shell_whatever_they_hold() {
        for text in [
            "plain",
            "two words",
            "it's",
            "''",
            "a\nnew line",
            "$HOME `id` $(id) \\ \"",
            "ünïcode ✓",
            "",
            "*.yaml ~ !x #y",
        ] {
            let line = format!("curl {}", quote(text));
            assert_eq!(words_in_sh(&line), [text], "{line}");
        }
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("a-b_c.d/e:f=g@h%i+j,k"), "a-b_c.d/e:f=g@h%i+j,k");
    }

    #[test]
    fn brackets_in_a_url_turn_curl_s_globbing_off_and_head_is_head() {
        let sent = request("GET", "http://127.0.0.1:1/x/[1]").build().unwrap();
        assert!(
            curl(&sent).starts_with("curl --globoff '"),
            "{}",
            curl(&sent)
        );
        let head = request("HEAD", "http://127.0.0.1:1/health")
            .build()
            .unwrap();
        assert_eq!(curl(&head), "curl --head http://127.0.0.1:1/health");
        let delete = request("DELETE", "http://127.0.0.1:1/x").build().unwrap();
        assert_eq!(curl(&delete), "curl -X DELETE http://127.0.0.1:1/x");
    }
}
