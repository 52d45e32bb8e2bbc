//! `metrtest images`: build (if needed) and list the images the stack runs.

use comfy_table::Table;

use crate::engine;
use crate::exit::Result;
use crate::stack::images;
use crate::ui::{self, Ui};

pub async fn run(choice: &images::ImageChoice, ui: &Ui) -> Result<()> {
    let engine = engine::connect().await?;
    let set = images::ensure(&engine, choice, ui).await?;
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
