//! `metrtest images`: build (if needed) and list the images the stack runs,
//! or save them to an archive and load one (`stack::image_archive`).

use std::path::Path;

use comfy_table::Table;

use crate::engine;
use crate::exit::Result;
use crate::stack::{image_archive, images};
use crate::ui::{self, Ui};

/// `--save FILE`.
pub async fn save(path: &Path, ui: &Ui) -> Result<()> {
    let engine = engine::connect().await?;
    let manifest = image_archive::save(&engine, path, &ui.progress()).await?;
    ui.info(format!(
        "saved {} images ({} MB) and metrtest {} to {}",
        manifest.images.len(),
        manifest.images_bytes / 1_000_000,
        manifest.metrtest_version,
        path.display()
    ));
    Ok(())
}

/// `--load FILE`.
pub async fn load(path: &Path, ui: &Ui) -> Result<()> {
    let engine = engine::connect().await?;
    let manifest = image_archive::load(&engine, path, &ui.progress()).await?;
    let commit = manifest.commit.as_deref().unwrap_or("no commit");
    ui.info(format!(
        "loaded {} images built from {commit}{}",
        manifest.images.len(),
        if manifest.dirty { " with changes" } else { "" }
    ));
    Ok(())
}

pub async fn run(choice: &images::ImageChoice, ui: &Ui) -> Result<()> {
    let engine = engine::connect().await?;
    let set = images::ensure(&engine, choice, &ui.progress()).await?;
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["service", "image", "size"]);
    for (service, image) in [
        ("postgres", &set.postgres),
        ("gometr", &set.gometr),
        ("checker", &set.checker),
        ("api", &set.api),
    ] {
        let size = engine
            .image_size(image)
            .await
            .ok()
            .flatten()
            .map(|s| format!("{:.1} MB", s as f64 / 1e6))
            .unwrap_or_else(|| "?".into());
        table.add_row([service, image.as_str(), size.as_str()]);
    }
    ui::print(table.to_string());
    Ok(())
}
