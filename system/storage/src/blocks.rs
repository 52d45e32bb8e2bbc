//! The stored layout of samples: one row per block of series ids per timestamp.
//!
//! Series `id` lives in block `id >> 7` at slot `id & 127`; a row holds the
//! values of one target's block at one timestamp, `None` where a series has no
//! sample. See `migrations/V2__sample_blocks.sql` for why.

use std::collections::HashMap;

use foldhash::fast::RandomState;

/// Series ids per block row.
pub const BLOCK_SERIES: i64 = 128;
const SHIFT: u32 = BLOCK_SERIES.trailing_zeros();

/// Block of a series id.
pub fn block_of(id: i64) -> i64 {
    id >> SHIFT
}

/// Slot of a series id within its block.
pub fn slot_of(id: i64) -> usize {
    (id & (BLOCK_SERIES - 1)) as usize
}

/// First series id of a block.
pub fn first_id(block: i64) -> i64 {
    block << SHIFT
}

/// One row of `sample_blocks`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRow {
    pub target_id: i32,
    pub block: i64,
    pub ts_micros: i64,
    /// Values by slot; trailing empty slots are not stored.
    pub vals: Vec<Option<f64>>,
}

/// Groups samples into block rows, keeping the first value of a repeated sample.
#[derive(Default)]
pub struct BlockEncoder {
    rows: Vec<BlockRow>,
    index: HashMap<(i32, i64, i64), usize, RandomState>,
    last: Option<((i32, i64, i64), usize)>,
}

impl BlockEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the sample of series `id` at `ts_micros`.
    pub fn push(&mut self, target_id: i32, id: i64, ts_micros: i64, value: f64) {
        let key = (target_id, block_of(id), ts_micros);
        // Samples of one scrape mostly arrive in id order at one timestamp, so
        // the row of the previous sample is usually the right one.
        let row = match self.last {
            Some((last_key, row)) if last_key == key => row,
            _ => {
                let rows = &mut self.rows;
                let row = *self.index.entry(key).or_insert_with(|| {
                    rows.push(BlockRow {
                        target_id,
                        block: key.1,
                        ts_micros,
                        vals: Vec::with_capacity(BLOCK_SERIES as usize),
                    });
                    rows.len() - 1
                });
                self.last = Some((key, row));
                row
            }
        };
        let vals = &mut self.rows[row].vals;
        let slot = slot_of(id);
        if vals.len() <= slot {
            vals.resize(slot + 1, None);
        }
        vals[slot].get_or_insert(value);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in the order their first sample arrived.
    pub fn finish(self) -> Vec<BlockRow> {
        self.rows
    }
}

/// The `(series id, value)` pairs of a stored row, highest id first.
pub fn decode_desc(block: i64, vals: &[Option<f64>]) -> impl Iterator<Item = (i64, f64)> + '_ {
    let first = first_id(block);
    vals.iter()
        .enumerate()
        .rev()
        .filter_map(move |(slot, v)| v.map(|v| (first + slot as i64, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_blocks_and_slots_and_back() {
        for id in [0_i64, 1, 127, 128, 129, 1 << 40] {
            assert_eq!(first_id(block_of(id)) + slot_of(id) as i64, id);
        }
        assert_eq!(block_of(127), 0);
        assert_eq!(block_of(128), 1);
    }

    #[test]
    fn samples_group_by_target_block_and_time_with_gaps_empty() {
        let mut enc = BlockEncoder::new();
        enc.push(1, 130, 10, 1.0);
        enc.push(1, 128, 10, 2.0);
        enc.push(1, 5, 10, 3.0);
        enc.push(2, 129, 10, 4.0);
        enc.push(1, 130, 20, 5.0);
        let rows = enc.finish();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].vals, vec![Some(2.0), None, Some(1.0)]);
        assert_eq!((rows[1].block, rows[1].vals.len()), (0, 6));
        assert_eq!(rows[2].target_id, 2);
        assert_eq!(rows[3].ts_micros, 20);
    }

    #[test]
    fn a_repeated_sample_keeps_its_first_value() {
        let mut enc = BlockEncoder::new();
        enc.push(1, 3, 10, 1.0);
        enc.push(1, 3, 10, 9.0);
        assert_eq!(enc.finish()[0].vals[3], Some(1.0));
    }

    #[test]
    fn decoding_yields_present_slots_highest_id_first() {
        let vals = [Some(1.0), None, Some(f64::INFINITY)];
        let got: Vec<_> = decode_desc(2, &vals).collect();
        assert_eq!(got, vec![(258, f64::INFINITY), (256, 1.0)]);
    }
}
