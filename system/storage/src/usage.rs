//! How much the sample storage holds, and what it takes on disk.

use serde::Serialize;

/// Samples held by one part of the sample storage and their bytes on disk,
/// data and indexes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoragePart {
    pub samples: u64,
    pub bytes: u64,
}

/// The sample storage by part: the two add up to all it takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StorageUsage {
    /// Recent samples, as written: block rows in PostgreSQL.
    pub head: StoragePart,
    /// Samples rewritten into compressed chunks; none until a store compacts.
    pub compressed: StoragePart,
}

impl StorageUsage {
    /// Samples held in all parts.
    pub fn samples(&self) -> u64 {
        self.head.samples + self.compressed.samples
    }

    /// Bytes taken by all parts.
    pub fn bytes(&self) -> u64 {
        self.head.bytes + self.compressed.bytes
    }
}
