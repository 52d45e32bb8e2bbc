//! The images a run's stacks are made from, prepared once before the first
//! stack starts: the reaper's, each environment's set, and the fault proxy's.

use crate::engine::Client;
use crate::exit::Result;
use crate::stack::faults;
use crate::stack::images::{self, ImageChoice};
use crate::stack::progress::Progress;
use crate::stack::reaper;

/// Images a run needs besides the stack's.
pub struct Built {
    pub reaper: Option<String>,
    /// The stack's images in each environment (same index).
    pub sets: Vec<images::ImageSet>,
    /// The fault proxy's, when a scenario has link faults.
    pub faultproxy: Option<String>,
}

/// The reaper's image (if it can be built), the stack's images for each
/// environment's `choices`, and the fault proxy's if `faults` (some scenario has link
/// faults). Environments that choose the same images share one set.
pub async fn build_images(
    engine: &Client,
    choices: &[&ImageChoice],
    faults: bool,
    progress: &Progress,
) -> Result<Built> {
    // Side by side: the engine's builds and the PostgreSQL image's assembly
    // overlap; cargo runs once (`images::compile`).
    let faultproxy = async {
        match faults {
            true => faults::image(engine, progress).await.map(Some),
            false => Ok(None),
        }
    };
    let (reaper, set, faultproxy) = tokio::join!(
        reaper::image_or_warn(engine, progress),
        images::ensure(engine, choices[0], progress),
        faultproxy
    );
    let (set, faultproxy) = (set?, faultproxy?);
    let mut sets = vec![set];
    for (index, choice) in choices.iter().enumerate().skip(1) {
        let same = choices[..index].iter().position(|c| c == choice);
        let set = match same {
            Some(earlier) => sets[earlier].clone(),
            None => images::ensure(engine, choice, progress).await?,
        };
        sets.push(set);
    }
    Ok(Built {
        reaper,
        sets,
        faultproxy,
    })
}
