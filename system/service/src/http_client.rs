//! Where every HTTP client of the system and of metrtest starts: reqwest over
//! rustls with ring's crypto.
//!
//! reqwest is built with `rustls-no-provider` (no aws-lc C build, issue 24),
//! so it panics when a client is built before a process-wide rustls crypto
//! provider is installed; [`builder`] installs ring's first.

use std::sync::Once;

/// Makes ring rustls' crypto provider for the whole process, unless one
/// already is. Binaries call it first thing, so that no TLS user, ours or a
/// dependency's, meets a process without one.
pub fn install_crypto_provider() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // Err means another provider came first: any installed one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `reqwest::Client::builder()`, after [`install_crypto_provider`].
pub fn builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_https_only_client_builds_and_leaves_a_provider_installed() {
        let client = super::builder().https_only(true).build();

        assert!(client.is_ok(), "{client:?}");
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
