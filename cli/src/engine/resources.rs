//! The engine client's operations on networks, volumes and images, beside
//! those on containers in [`crate::engine::client`].

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateImageOptions, ImportImageOptions, ListNetworksOptions,
    ListVolumesOptions, RemoveVolumeOptions,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::engine::client::{Client, removed};
use crate::engine::error::{EngineError, Result};
use crate::engine::labels;
use crate::engine::model::Subnet;

/// Networks.
impl Client {
    /// Creates a bridge network `name` with `labels`, on `subnet` if given
    /// (else one the engine picks from its pools).
    pub async fn create_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        subnet: Option<&Subnet>,
    ) -> Result<()> {
        let request = network_request(name, labels, subnet);
        self.docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(|source| EngineError::CreateNetwork {
                network: name.to_owned(),
                source,
            })
    }

    /// The IPv4 subnet the engine gave `network`, if it says.
    pub async fn network_subnet(&self, network: &str) -> Option<Subnet> {
        let inspect = self.docker.inspect_network(network, None).await.ok()?;
        inspect
            .ipam?
            .config?
            .into_iter()
            .find(|c| c.subnet.as_deref().is_some_and(|s| s.contains('.')))
            .map(|c| Subnet {
                subnet: c.subnet.unwrap_or_default(),
                gateway: c.gateway,
            })
    }

    /// Removes `network` (a name or id); `Ok(false)` when it was gone or busy.
    pub async fn remove_network(&self, network: &str) -> Result<bool> {
        let result = self.docker.remove_network(network).await;
        removed(result, |source| EngineError::RemoveNetwork {
            network: network.to_owned(),
            source,
        })
    }

    /// Names of the networks of one run (`Some`) or of every run (`None`).
    pub async fn list_networks(&self, run: Option<&str>) -> Result<Vec<String>> {
        let options = ListNetworksOptions {
            filters: Some(labels::run_filter(run)),
        };
        let found = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|source| EngineError::ListNetworks { source })?;
        Ok(found.into_iter().filter_map(|n| n.name.or(n.id)).collect())
    }

    /// Attaches `container` to `network` under `aliases`, at `ipv4` if given.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
        ipv4: Option<&str>,
    ) -> Result<()> {
        let request = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ipam_config: ipv4.map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(|source| EngineError::ConnectNetwork {
                container: container.to_owned(),
                network: network.to_owned(),
                source,
            })
    }

    /// Cuts `container` off `network`.
    pub async fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let request = NetworkDisconnectRequest {
            container: container.to_owned(),
            force: Some(true),
        };
        self.docker
            .disconnect_network(network, request)
            .await
            .map_err(|source| EngineError::DisconnectNetwork {
                container: container.to_owned(),
                network: network.to_owned(),
                source,
            })
    }
}

fn network_request(
    name: &str,
    labels: HashMap<String, String>,
    subnet: Option<&Subnet>,
) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".into()),
        labels: Some(labels),
        ipam: subnet.map(|s| Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(s.subnet.clone()),
                gateway: s.gateway.clone(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Volumes.
impl Client {
    /// Creates volume `name` with `labels`, for `service`.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        service: &str,
    ) -> Result<()> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|source| EngineError::CreateVolume {
                volume: name.to_owned(),
                service: service.to_owned(),
                source,
            })
    }

    /// Names of the volumes of one run (`Some`) or of every run (`None`).
    pub async fn list_volumes(&self, run: Option<&str>) -> Result<Vec<String>> {
        let options = ListVolumesOptions {
            filters: Some(labels::run_filter(run)),
        };
        let found = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|source| EngineError::ListVolumes { source })?;
        Ok(found
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Removes volume `name`; `Ok(false)` when it was gone or in use.
    pub async fn remove_volume(&self, name: &str) -> Result<bool> {
        let result = self
            .docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await;
        removed(result, |source| EngineError::RemoveVolume {
            volume: name.to_owned(),
            source,
        })
    }
}

/// Images.
impl Client {
    /// Whether the engine has `image`.
    pub async fn has_image(&self, image: &str) -> bool {
        self.docker.inspect_image(image).await.is_ok()
    }

    /// The size of `image` in bytes; an error when the engine lacks it.
    pub async fn image_size(&self, image: &str) -> Result<Option<i64>> {
        self.docker
            .inspect_image(image)
            .await
            .map(|i| i.size)
            .map_err(|source| EngineError::InspectImage {
                image: image.to_owned(),
                source,
            })
    }

    /// Builds `tag` from a tar build context holding `Dockerfile`, labelled
    /// as the image of `service`; `progress` sees each line the build prints.
    pub async fn build_image(
        &self,
        tag: &str,
        service: &str,
        context: Vec<u8>,
        mut progress: impl FnMut(&str),
    ) -> Result<()> {
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(tag.to_owned()),
            rm: true,
            forcerm: true,
            labels: Some(HashMap::from([(
                labels::IMAGE.to_owned(),
                service.to_owned(),
            )])),
            ..Default::default()
        };
        let body = bollard::body_full(context.into());
        let mut stream = self.docker.build_image(options, None, Some(body));
        let mut log = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|source| EngineError::BuildImage {
                image: tag.to_owned(),
                source,
            })?;
            if let Some(detail) = info.error_detail {
                return Err(EngineError::BuildStep {
                    image: tag.to_owned(),
                    detail: detail.message.unwrap_or_default(),
                    output: log.join(""),
                });
            }
            if let Some(line) = info.stream {
                progress(line.trim());
                log.push(line);
            }
        }
        Ok(())
    }

    /// Pulls `image` if a registry answers within `within`; `false` otherwise
    /// (air-gapped engines fail fast or time out).
    pub async fn try_pull(&self, image: &str, within: Duration) -> bool {
        let (name, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let options = CreateImageOptions {
            from_image: Some(name.to_owned()),
            tag: Some(tag.to_owned()),
            ..Default::default()
        };
        let attempt = async {
            let mut stream = self.docker.create_image(Some(options), None, None);
            while let Some(item) = stream.next().await {
                if item.is_err() {
                    return false;
                }
            }
            true
        };
        let pulled = tokio::time::timeout(within, attempt).await.unwrap_or(false);
        pulled && self.has_image(image).await
    }
}

/// Image archives (`docker save` and `docker load`).
impl Client {
    /// Writes `images` with their tags, as one `docker save` tar, into `out`;
    /// `chunk` sees every piece written (to hash it on the way).
    pub async fn save_images(
        &self,
        images: &[&str],
        out: &mut tokio::fs::File,
        mut chunk: impl FnMut(&[u8]),
    ) -> Result<()> {
        let failed = |source| EngineError::SaveImages {
            images: images.join(", "),
            source,
        };
        let mut stream = std::pin::pin!(self.docker.export_images(images));
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(failed)?;
            chunk(&piece);
            out.write_all(&piece)
                .await
                .map_err(EngineError::io("write the saved images"))?;
        }
        out.flush()
            .await
            .map_err(EngineError::io("write the saved images"))
    }

    /// Loads a `docker save` tar from `file` into the engine.
    pub async fn load_images(&self, file: tokio::fs::File) -> Result<()> {
        let body = tokio_util::io::ReaderStream::new(file);
        let options = ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut stream = self.docker.import_image_stream(options, body, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|source| EngineError::LoadImages { source })?;
            if let Some(detail) = info.error_detail {
                return Err(EngineError::LoadRefused {
                    detail: detail.message.unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_subnet_is_sent_as_the_networks_only_ipam_config() {
        let subnet = Subnet {
            subnet: "172.30.0.0/16".into(),
            gateway: Some("172.30.0.1".into()),
        };
        let labels = labels::run_labels("abc", None);
        let request = network_request("metrtest-abc", labels.clone(), Some(&subnet));
        let config = request.ipam.and_then(|i| i.config).expect("a config");
        assert_eq!(config.len(), 1);
        assert_eq!(config[0].subnet.as_deref(), Some("172.30.0.0/16"));
        assert_eq!(config[0].gateway.as_deref(), Some("172.30.0.1"));
        assert_eq!(request.labels.unwrap()[labels::RUN], "abc");
        assert!(network_request("metrtest-abc", labels, None).ipam.is_none());
    }
}
