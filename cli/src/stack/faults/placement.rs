//! The fault proxy on a stack's links: a container of the run (service
//! `faultproxy`, see `cli/faultproxy`) with one proxy per link that a
//! scenario's network steps name, controlled over its Toxiproxy-shaped API.
//!
//! Each link's client is configured with the proxy's address instead of the
//! server's (a database URL, a checker target). The proxy does not take the
//! server's network alias: `checker->postgres` and `api->postgres` reach the
//! same server and must be faulted apart, which one alias cannot do, and the
//! server keeps its own name for partition and heal. Stacks whose scenarios
//! have no link steps get no proxy at all.

use crate::engine::Client;
use crate::engine::error::Result;
use crate::scenario::network::Link;
use crate::stack::images;
use crate::stack::progress::Progress;
use crate::stack::spec::{ServiceSpec, StackSpec};

/// The proxy's service name in the stack.
pub const SERVICE: &str = "faultproxy";
/// The control API's port in the container (Toxiproxy's).
pub const CONTROL_PORT: u16 = 8474;
/// The first link's listen port in the container; the next links follow.
const FIRST_LINK_PORT: u16 = 10_000;
const PACKAGE: &str = "metrtest-faultproxy";

/// Builds the proxy's image (compiling its static binary) unless the engine has it.
pub async fn image(engine: &Client, progress: &Progress) -> Result<String> {
    images::helper_image(engine, PACKAGE, SERVICE, progress).await
}

/// The proxy's name for a link in the control API.
pub fn proxy_name(link: &Link) -> String {
    format!("{}_to_{}", link.client, link.server)
}

/// Puts the proxy on `links` of the stack: adds its service and points each
/// link's client at it. Links between services the stack lacks are skipped
/// (load-time validation refuses them). Does nothing without links.
pub fn place(spec: &mut StackSpec, image: &str, links: &[Link]) {
    let mut proxies = Vec::new();
    for link in links {
        let name = proxy_name(link);
        if proxies.iter().any(|(n, _, _)| *n == name) {
            continue;
        }
        let Some(server_port) = spec
            .services
            .iter()
            .find(|s| s.name == link.server)
            .map(|s| s.port)
        else {
            continue;
        };
        let Some(client) = spec.services.iter_mut().find(|s| s.name == link.client) else {
            continue;
        };
        let port = FIRST_LINK_PORT + proxies.len() as u16;
        let from = format!("{}:{server_port}", link.server);
        let to = format!("{SERVICE}:{port}");
        for (_, value) in client.env.iter_mut() {
            *value = redirect(value, &from, &to);
        }
        if !client.after.iter().any(|a| a == SERVICE) {
            client.after.push(SERVICE.to_owned());
        }
        proxies.push((name, port, from));
    }
    if proxies.is_empty() {
        return;
    }
    let initial: Vec<serde_json::Value> = proxies
        .iter()
        .map(|(name, port, upstream)| {
            serde_json::json!({"name": name, "listen": format!("0.0.0.0:{port}"), "upstream": upstream})
        })
        .collect();
    let env = vec![
        (
            "FAULTPROXY_LISTEN".into(),
            format!("0.0.0.0:{CONTROL_PORT}"),
        ),
        (
            "FAULTPROXY_PROXIES".into(),
            serde_json::Value::Array(initial).to_string(),
        ),
    ];
    spec.services
        .push(ServiceSpec::ours(SERVICE, image, CONTROL_PORT, env));
}

/// `value` with every `from` address (`server:port` after `@` or `//`, as in
/// a database URL or an HTTP URL, JSON-embedded or not) replaced by `to`.
fn redirect(value: &str, from: &str, to: &str) -> String {
    let mut out = value.to_owned();
    for lead in ["@", "//"] {
        let needle = format!("{lead}{from}");
        let mut rewritten = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(&needle) {
            let after = &rest[at + needle.len()..];
            // `gometr:8080` is not `gometr:80800`: the address must end here.
            let ends = after.chars().next().is_none_or(|c| !c.is_ascii_digit());
            rewritten.push_str(&rest[..at]);
            rewritten.push_str(if ends { lead } else { &needle });
            if ends {
                rewritten.push_str(to);
            }
            rest = after;
        }
        rewritten.push_str(rest);
        out = rewritten;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::envfile::EnvFile;
    use crate::stack::images::ImageSet;

    fn spec(env_file: &str) -> StackSpec {
        let images = ImageSet {
            postgres: "p".into(),
            gometr: "g".into(),
            checker: "c".into(),
            api: "a".into(),
        };
        StackSpec::build(&images, &EnvFile::parse(env_file, "metrtest.yaml").unwrap())
    }

    fn env<'a>(spec: &'a StackSpec, service: &str, key: &str) -> &'a str {
        let s = spec.services.iter().find(|s| s.name == service).unwrap();
        &s.env.iter().find(|(k, _)| k == key).unwrap().1
    }

    fn link(text: &str) -> Link {
        text.parse::<Link>().unwrap()
    }

    #[test]
    fn without_links_the_stack_has_no_proxy() {
        let mut with_none = spec("");
        place(&mut with_none, "fp", &[]);
        assert!(with_none.services.iter().all(|s| s.name != SERVICE));
        assert_eq!(with_none.services.len(), spec("").services.len());
    }

    #[test]
    fn each_named_link_goes_through_its_own_proxy_port_and_others_stay_direct() {
        let mut s = spec("gometr: { replicas: 2 }\n");
        let links = [
            link("checker->postgres"),
            link("checker->gometr-2"),
            link("checker->postgres"),
        ];

        place(&mut s, "fp", &links);

        let db = env(&s, "checker", "CHECKER_DATABASE_URL");
        assert!(db.contains("@faultproxy:10000/metr"), "{db}");
        let api_db = env(&s, "api", "API_DATABASE_URL");
        assert!(api_db.contains("@postgres:5432/metr"), "{api_db}");
        let targets = env(&s, "checker", "CHECKER_TARGETS");
        assert!(targets.contains("\"http://faultproxy:10001\""), "{targets}");
        assert!(
            targets.contains("\"http://faultproxy:10001/health\""),
            "{targets}"
        );
        assert!(targets.contains("\"http://gometr-1:8080\""), "{targets}");
        let proxies: serde_json::Value =
            serde_json::from_str(env(&s, SERVICE, "FAULTPROXY_PROXIES")).unwrap();
        assert_eq!(
            proxies,
            serde_json::json!([
                {"name": "checker_to_postgres", "listen": "0.0.0.0:10000", "upstream": "postgres:5432"},
                {"name": "checker_to_gometr-2", "listen": "0.0.0.0:10001", "upstream": "gometr-2:8080"},
            ])
        );
    }

    #[test]
    fn the_clients_start_after_the_proxy() {
        let mut s = spec("");
        place(&mut s, "fp", &[link("api->postgres")]);
        let waves: Vec<Vec<&str>> = s
            .waves()
            .iter()
            .map(|w| w.iter().map(|s| s.name.as_str()).collect())
            .collect();
        assert!(waves[0].contains(&SERVICE), "{waves:?}");
        let api = s.services.iter().find(|s| s.name == "api").unwrap();
        assert!(api.after.iter().any(|a| a == SERVICE));
    }

    #[test]
    fn an_address_is_redirected_only_where_it_ends() {
        assert_eq!(
            redirect(
                "http://gometr:8080/x http://gometr:80800 //gometr:8080",
                "gometr:8080",
                "fp:1"
            ),
            "http://fp:1/x http://gometr:80800 //fp:1"
        );
        assert_eq!(
            redirect("postgres://u:p@postgres:5432/db", "postgres:5432", "fp:2"),
            "postgres://u:p@fp:2/db"
        );
    }
}
