//! Compressed chunks: the block rows of one target's block over a closed time
//! range, in one value.
//!
//! The timestamps are shared by the block's 128 series, as in a block row, so
//! they are stored once: the first as a varint, then deltas of deltas as
//! zigzag varints (one byte each at a steady interval). Each series (slot)
//! then has its own column, length-prefixed so that a reader of one series
//! skips the others: which timestamps it has (all, none, or a bitmap), then
//! its values as Gorilla's XOR stream (VLDB 2015; Prometheus's
//! `tsdb/chunkenc/xor.go` does the same): a value equal to the previous costs
//! one bit, others the XOR's meaningful bits. Floats are stored bit for bit,
//! so NaN payloads, infinities, -0.0 and subnormals come back as they went.
//!
//! A column whose every value is a short decimal (counters in whole units or
//! hundredths, gauges with 1 to 3 decimals, bytes) is stored instead as
//! decimal mantissas, deltas of deltas in varints, as VictoriaMetrics does
//! before zstd, when that is smaller.
//!
//! Measured (examples/chunk_bytes.rs) on the same 1.57 M samples of 3,000
//! gometr series scraped every second for 7 minutes, stored by the checker
//! in a host PostgreSQL 15, chunks of 120 s in a table with its primary key
//! and TOAST (pglz left on: it halves constant columns):
//!
//! | bytes per sample | constant | realistic |
//! | --- | --- | --- |
//! | block rows today (`sample_blocks`, indexes included) | 10.46 | 10.45 |
//! | chunks, XOR only | 0.151 | 2.67 |
//! | chunks, decimal where smaller, else XOR | 0.146 | 1.60 |
//! | Prometheus 2.42, 2-minute compacted blocks, same targets, same minutes | 2.54 | 5.31 |
//!
//! Chunks of 300 s: 0.130 and 1.54. Storing the column unTOAST-compressed
//! (`EXTERNAL`) costs more on both (0.36 and 1.61).
//!
//! Written here rather than taken from a crate: the column layout follows the
//! block rows, and no maintained crate encodes columns of optional values.

use thiserror::Error;

/// A chunk that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("read a chunk: it ends early")]
    Truncated,
    #[error("read a chunk: unknown column mode {0:#x}")]
    Presence(u8),
    #[error("read a chunk: a varint is too long")]
    Varint,
}

/// One decoded block row: timestamp (µs) and values by slot, trailing empty
/// slots not stored, as in `sample_blocks`.
pub type Row = (i64, Vec<Option<f64>>);

// A column's first byte: where it has samples (low nibble; a column with no
// sample at all is empty, without this byte) and how its values are stored.
const EVERYWHERE: u8 = 1;
const BITMAP: u8 = 2;
const PRESENCE: u8 = 0x0f;
/// Values as Gorilla's XOR stream: any float.
const XOR: u8 = 0x00;
/// Values as decimal mantissas of one exponent, deltas of deltas in zigzag
/// varints: a counter that rises by whole units or hundredths costs a byte or
/// two where its XOR costs four to six.
const DECIMAL: u8 = 0x10;
/// Most decimals tried: 10^9 keeps mantissas of common values below 2^53.
const MAX_DECIMALS: u32 = 9;
/// Largest mantissa: integers up to 2^53 are exact in an f64.
const MAX_MANTISSA: i64 = 1 << 53;

/// Which value codecs the encoder may choose from, for measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codecs {
    /// XOR only, as Prometheus.
    Xor,
    /// Decimal where every value of a column is a short decimal and that is
    /// smaller, XOR otherwise.
    Best,
}

/// Encodes rows of strictly increasing timestamps into one chunk.
pub fn encode(rows: &[Row]) -> Vec<u8> {
    encode_with(rows, Codecs::Best)
}

/// [`encode`], choosing only among `codecs`.
pub fn encode_with(rows: &[Row], codecs: Codecs) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, rows.len() as u64);
    let mut prev = 0_i64;
    let mut prev_delta = 0_i64;
    for (i, (ts, _)) in rows.iter().enumerate() {
        // Wrapping: any i64 timestamps round-trip, however far apart.
        let delta = ts.wrapping_sub(prev);
        let word = match i {
            0 => *ts,
            1 => delta,
            _ => delta.wrapping_sub(prev_delta),
        };
        put_varint(&mut out, zigzag(word));
        prev = *ts;
        prev_delta = delta;
    }
    let slots = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    put_varint(&mut out, slots as u64);
    let mut column = Vec::new();
    for slot in 0..slots {
        column.clear();
        encode_column(
            rows.iter().map(|r| r.1.get(slot).copied().flatten()),
            rows.len(),
            codecs,
            &mut column,
        );
        put_varint(&mut out, column.len() as u64);
        out.extend_from_slice(&column);
    }
    out
}

fn encode_column(
    values: impl Iterator<Item = Option<f64>> + Clone,
    n: usize,
    codecs: Codecs,
    out: &mut Vec<u8>,
) {
    let present = values.clone().filter(Option::is_some).count();
    if present == 0 {
        return;
    }
    let mut xor = XorWriter::default();
    for v in values.clone().flatten() {
        xor.push(v);
    }
    let xor = xor.finish();
    let decimal = match codecs {
        Codecs::Best => encode_decimal(values.clone().flatten()).filter(|d| d.len() < xor.len()),
        Codecs::Xor => None,
    };
    let codec = if decimal.is_some() { DECIMAL } else { XOR };
    if present == n {
        out.push(EVERYWHERE | codec);
    } else {
        out.push(BITMAP | codec);
        let mut bitmap = vec![0_u8; n.div_ceil(8)];
        for (i, v) in values.clone().enumerate() {
            if v.is_some() {
                bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
    }
    out.extend_from_slice(decimal.as_deref().unwrap_or(&xor));
}

/// The decimals a value needs, if it is a short decimal: the float that
/// `mantissa / 10^decimals` gives back bit for bit (IEEE division of two exact
/// integers is correctly rounded, as parsing the decimal is).
fn decimals_of(v: f64) -> Option<u32> {
    (0..=MAX_DECIMALS).find(|&e| {
        let scale = 10_f64.powi(e as i32);
        let m = (v * scale).round();
        // Through i64, as the decoder goes: -0.0 comes back +0.0 and is refused.
        m.abs() < MAX_MANTISSA as f64 && ((m as i64) as f64 / scale).to_bits() == v.to_bits()
    })
}

/// Values as decimals of one exponent, or `None` if one is not a short
/// decimal (NaN, infinities, -0.0, most results of arithmetic).
fn encode_decimal(values: impl Iterator<Item = f64> + Clone) -> Option<Vec<u8>> {
    let mut decimals = 0;
    for v in values.clone() {
        decimals = decimals.max(decimals_of(v)?);
    }
    let scale = 10_f64.powi(decimals as i32);
    let mut out = vec![decimals as u8];
    let (mut prev, mut prev_delta) = (0_i64, 0_i64);
    for (i, v) in values.enumerate() {
        let m = (v * scale).round();
        // A value exact at fewer decimals may not be at more: check again.
        if m.abs() >= MAX_MANTISSA as f64 || ((m as i64) as f64 / scale).to_bits() != v.to_bits() {
            return None;
        }
        let m = m as i64;
        let delta = m - prev;
        let word = match i {
            0 => m,
            1 => delta,
            _ => delta - prev_delta,
        };
        put_varint(&mut out, zigzag(word));
        prev = m;
        prev_delta = delta;
    }
    Some(out)
}

/// Decodes every row of a chunk.
pub fn decode(chunk: &[u8]) -> Result<Vec<Row>, ChunkError> {
    let mut r = Reader { buf: chunk, pos: 0 };
    let times = r.times()?;
    let slots = r.varint()? as usize;
    let mut rows: Vec<Row> = times.iter().map(|&ts| (ts, Vec::new())).collect();
    for slot in 0..slots {
        let column = r.column()?;
        for (i, v) in decode_column(column, times.len())?.into_iter().enumerate() {
            if let Some(v) = v {
                let vals = &mut rows[i].1;
                vals.resize(slot + 1, None);
                vals[slot] = Some(v);
            }
        }
    }
    Ok(rows)
}

/// Decodes the samples of one slot only, oldest first, skipping the others.
pub fn decode_slot(chunk: &[u8], slot: usize) -> Result<Vec<(i64, f64)>, ChunkError> {
    let mut r = Reader { buf: chunk, pos: 0 };
    let times = r.times()?;
    let slots = r.varint()? as usize;
    if slot >= slots {
        return Ok(Vec::new());
    }
    for _ in 0..slot {
        r.column()?;
    }
    let column = decode_column(r.column()?, times.len())?;
    Ok(times
        .into_iter()
        .zip(column)
        .filter_map(|(ts, v)| v.map(|v| (ts, v)))
        .collect())
}

fn decode_column(column: &[u8], n: usize) -> Result<Vec<Option<f64>>, ChunkError> {
    let Some((&mode, rest)) = column.split_first() else {
        return Ok(vec![None; n]);
    };
    let (present, bits): (Vec<bool>, &[u8]) = match mode & PRESENCE {
        EVERYWHERE => (vec![true; n], rest),
        BITMAP => {
            let len = n.div_ceil(8);
            let bitmap = rest.get(..len).ok_or(ChunkError::Truncated)?;
            let present = (0..n)
                .map(|i| bitmap[i / 8] & (1 << (i % 8)) != 0)
                .collect();
            (present, &rest[len..])
        }
        other => return Err(ChunkError::Presence(other)),
    };
    match mode & !PRESENCE {
        XOR => {
            let mut xor = XorReader::new(bits);
            present
                .into_iter()
                .map(|p| if p { xor.next().map(Some) } else { Ok(None) })
                .collect()
        }
        DECIMAL => {
            let (&decimals, rest) = bits.split_first().ok_or(ChunkError::Truncated)?;
            if u32::from(decimals) > MAX_DECIMALS {
                return Err(ChunkError::Presence(mode));
            }
            let scale = 10_f64.powi(i32::from(decimals));
            let mut r = Reader { buf: rest, pos: 0 };
            let (mut i, mut prev, mut delta) = (0, 0_i64, 0_i64);
            present
                .into_iter()
                .map(|p| {
                    if !p {
                        return Ok(None);
                    }
                    let word = unzigzag(r.varint()?);
                    let m = match i {
                        0 => word,
                        1 => prev.wrapping_add(word),
                        _ => prev.wrapping_add(delta.wrapping_add(word)),
                    };
                    i += 1;
                    delta = m.wrapping_sub(prev);
                    prev = m;
                    Ok(Some(m as f64 / scale))
                })
                .collect()
        }
        _ => Err(ChunkError::Presence(mode)),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ChunkError> {
        let mut value = 0_u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(ChunkError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::Varint)
    }

    fn times(&mut self) -> Result<Vec<i64>, ChunkError> {
        let n = self.varint()? as usize;
        // Every timestamp takes at least a byte: a bound before allocating.
        if n > self.buf.len() {
            return Err(ChunkError::Truncated);
        }
        let mut times = Vec::with_capacity(n);
        let (mut prev, mut delta) = (0_i64, 0_i64);
        for i in 0..n {
            let word = unzigzag(self.varint()?);
            let ts = match i {
                0 => word,
                1 => prev.wrapping_add(word),
                _ => prev.wrapping_add(delta.wrapping_add(word)),
            };
            delta = ts.wrapping_sub(prev);
            prev = ts;
            times.push(ts);
        }
        Ok(times)
    }

    fn column(&mut self) -> Result<&'a [u8], ChunkError> {
        let len = self.varint()? as usize;
        let end = self.pos.checked_add(len).ok_or(ChunkError::Truncated)?;
        let column = self.buf.get(self.pos..end).ok_or(ChunkError::Truncated)?;
        self.pos = end;
        Ok(column)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Gorilla's XOR stream of floats, most significant bit first.
#[derive(Default)]
struct XorWriter {
    bits: BitWriter,
    count: usize,
    prev: u64,
    /// The meaningful window of the last stored XOR: (leading, trailing) zeros.
    window: Option<(u32, u32)>,
}

impl XorWriter {
    fn push(&mut self, value: f64) {
        let value = value.to_bits();
        if self.count == 0 {
            self.bits.put(value, 64);
        } else {
            self.put_xor(value ^ self.prev);
        }
        self.prev = value;
        self.count += 1;
    }

    fn put_xor(&mut self, xor: u64) {
        if xor == 0 {
            self.bits.put(0, 1);
            return;
        }
        // At most 31 leading zeros fit their 5 bits; more are stored as meaningful.
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        match self.window {
            Some((l, t)) if leading >= l && trailing >= t => {
                self.bits.put(0b10, 2);
                self.bits.put(xor >> t, 64 - l - t);
            }
            _ => {
                let meaningful = 64 - leading - trailing;
                self.bits.put(0b11, 2);
                self.bits.put(u64::from(leading), 5);
                // 64 meaningful bits are written as 0: 6 bits hold 0 to 63.
                self.bits.put(u64::from(meaningful & 63), 6);
                self.bits.put(xor >> trailing, meaningful);
                self.window = Some((leading, trailing));
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        self.bits.finish()
    }
}

struct XorReader<'a> {
    bits: BitReader<'a>,
    started: bool,
    prev: u64,
    window: (u32, u32),
}

impl<'a> XorReader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        XorReader {
            bits: BitReader { buf, pos: 0 },
            started: false,
            prev: 0,
            window: (0, 0),
        }
    }

    fn next(&mut self) -> Result<f64, ChunkError> {
        if !self.started {
            self.started = true;
            self.prev = self.bits.get(64)?;
            return Ok(f64::from_bits(self.prev));
        }
        if self.bits.get(1)? == 1 {
            if self.bits.get(1)? == 1 {
                let leading = self.bits.get(5)? as u32;
                let meaningful = match self.bits.get(6)? as u32 {
                    0 => 64,
                    m => m,
                };
                let trailing = 64_u32
                    .checked_sub(leading + meaningful)
                    .ok_or(ChunkError::Truncated)?;
                self.window = (leading, trailing);
            }
            let (l, t) = self.window;
            self.prev ^= self.bits.get(64 - l - t)? << t;
        }
        Ok(f64::from_bits(self.prev))
    }
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    /// Bits used in the last byte, 0 when it is full (or there is none).
    used: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `value` (`n` ≤ 64), most significant first.
    fn put(&mut self, value: u64, mut n: u32) {
        while n > 0 {
            if self.used == 0 {
                self.out.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(n);
            let bits = (value >> (n - take)) & ((1 << take) - 1);
            let last = self.out.last_mut().expect("a byte was pushed");
            *last |= (bits as u8) << (free - take);
            self.used = (self.used + take) % 8;
            n -= take;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

struct BitReader<'a> {
    buf: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl BitReader<'_> {
    fn get(&mut self, mut n: u32) -> Result<u64, ChunkError> {
        let mut value = 0_u64;
        while n > 0 {
            let byte = *self.buf.get(self.pos / 8).ok_or(ChunkError::Truncated)?;
            let offset = (self.pos % 8) as u32;
            let take = (8 - offset).min(n);
            let bits = (u64::from(byte) >> (8 - offset - take)) & ((1 << take) - 1);
            value = (value << take) | bits;
            self.pos += take as usize;
            n -= take;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn same(a: &[Row], b: &[Row]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.0 == y.0
                    && x.1.len() == y.1.len()
                    && x.1
                        .iter()
                        .zip(&y.1)
                        .all(|(u, v)| u.map(f64::to_bits) == v.map(f64::to_bits))
            })
    }

    /// Rows as the block encoder makes them: trailing empty slots trimmed.
    fn trimmed(mut rows: Vec<Row>) -> Vec<Row> {
        for row in &mut rows {
            while row.1.last() == Some(&None) {
                row.1.pop();
            }
        }
        rows
    }

    #[test]
    fn special_floats_come_back_bit_for_bit() {
        let specials = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff8_dead_beef_0001),
            f64::MIN_POSITIVE / 2.0,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            1.0,
        ];
        let rows: Vec<Row> = specials
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 1_000_000, vec![Some(v), None, Some(-v)]))
            .collect();
        assert!(same(&decode(&encode(&rows)).unwrap(), &rows));
    }

    #[test]
    fn a_steady_constant_series_costs_about_a_bit_a_sample() {
        let rows: Vec<Row> = (0..1200)
            .map(|i| (i * 1_000_000, vec![Some(42.0); 128]))
            .collect();
        let chunk = encode(&rows);
        assert!(
            chunk.len() < 128 * (1200 / 8 + 16) + 1300,
            "{} bytes",
            chunk.len()
        );
    }

    #[test]
    fn short_decimals_are_stored_as_decimals_and_others_as_xor() {
        let counter: Vec<Row> = (0..120)
            .map(|i| {
                (
                    i * 1_000_000,
                    vec![Some(1000.0 + (i * i % 97) as f64 / 100.0)],
                )
            })
            .collect();
        let best = encode(&counter);
        let xor = encode_with(&counter, Codecs::Xor);
        assert!(
            best.len() * 2 < xor.len(),
            "{} against {}",
            best.len(),
            xor.len()
        );
        assert!(same(&decode(&best).unwrap(), &counter));
        let noisy: Vec<Row> = (0..120)
            .map(|i| (i, vec![Some((i as f64).sqrt()), Some(-0.0)]))
            .collect();
        assert_eq!(encode(&noisy), encode_with(&noisy, Codecs::Xor));
    }

    #[test]
    fn one_slot_decodes_alone() {
        let rows: Vec<Row> = vec![
            (10, vec![Some(1.0), None, Some(3.0)]),
            (20, vec![None, None, Some(4.0)]),
            (35, vec![Some(2.0)]),
        ];
        let chunk = encode(&rows);
        assert_eq!(decode_slot(&chunk, 0).unwrap(), vec![(10, 1.0), (35, 2.0)]);
        assert_eq!(decode_slot(&chunk, 1).unwrap(), vec![]);
        assert_eq!(decode_slot(&chunk, 2).unwrap(), vec![(10, 3.0), (20, 4.0)]);
        assert_eq!(decode_slot(&chunk, 9).unwrap(), vec![]);
    }

    #[test]
    fn a_damaged_chunk_is_an_error_not_a_panic() {
        let rows: Vec<Row> = (0..50)
            .map(|i| (i * 7, vec![Some(i as f64 * 0.1), None, Some(1.0)]))
            .collect();
        let chunk = encode(&rows);
        for len in 0..chunk.len() {
            let _ = decode(&chunk[..len]);
        }
        let mut bad = chunk.clone();
        bad[0] = 0xff;
        let _ = decode(&bad);
    }

    fn any_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            any::<f64>(),
            Just(f64::NAN),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (0_u64..1 << 52).prop_map(f64::from_bits),
            (0_i64..1000).prop_map(|v| v as f64 / 100.0),
            (-(1_i64 << 53)..1 << 53, 0_i32..12).prop_map(|(m, e)| m as f64 / 10_f64.powi(e)),
        ]
    }

    /// Strictly increasing timestamps: steady, jittered, or anywhere in i64.
    fn times(n: usize) -> impl Strategy<Value = Vec<i64>> {
        prop_oneof![
            (any::<i64>(), 1_i64..1 << 40).prop_map(move |(start, step)| {
                (0..n as i64)
                    .map(|i| start.wrapping_add(i * step))
                    .collect::<Vec<_>>()
            }),
            (any::<i32>(), prop::collection::vec(1_i64..2_000_000, n)).prop_map(|(start, gaps)| {
                gaps.iter()
                    .scan(i64::from(start), |t, g| {
                        *t += g;
                        Some(*t)
                    })
                    .collect()
            }),
            prop::collection::btree_set(any::<i64>(), n).prop_map(|s| s.into_iter().collect()),
        ]
        .prop_filter("strictly increasing", |t: &Vec<i64>| {
            t.windows(2).all(|w| w[0] < w[1])
        })
    }

    fn rows() -> impl Strategy<Value = Vec<Row>> {
        (0_usize..60, 0_usize..20).prop_flat_map(|(n, width)| {
            let values = prop::collection::vec(
                prop::collection::vec(prop::option::weighted(0.8, any_float()), width),
                n,
            );
            (times(n), values).prop_map(|(t, v)| trimmed(t.into_iter().zip(v).collect()))
        })
    }

    proptest! {
        #[test]
        fn every_chunk_round_trips(rows in rows()) {
            let back = decode(&encode(&rows)).unwrap();
            prop_assert!(same(&back, &rows), "{rows:?}\n{back:?}");
            let back = decode(&encode_with(&rows, Codecs::Xor)).unwrap();
            prop_assert!(same(&back, &rows), "{rows:?}\n{back:?}");
        }

        #[test]
        fn decimal_columns_round_trip(
            start in -(1_i64 << 40)..1 << 40,
            steps in prop::collection::vec(-5000_i64..5000, 1..150),
            decimals in 0_i32..10,
        ) {
            let scale = 10_f64.powi(decimals);
            let rows: Vec<Row> = steps
                .iter()
                .scan(start, |m, s| {
                    *m += s;
                    Some(*m)
                })
                .enumerate()
                .map(|(i, m)| (i as i64, vec![Some(m as f64 / scale)]))
                .collect();
            let back = decode(&encode(&rows)).unwrap();
            prop_assert!(same(&back, &rows), "{rows:?}\n{back:?}");
        }

        #[test]
        fn every_slot_decodes_alone_as_in_the_rows(rows in rows(), slot in 0_usize..20) {
            let want: Vec<(i64, u64)> = rows
                .iter()
                .filter_map(|(ts, vals)| vals.get(slot).copied().flatten().map(|v| (*ts, v.to_bits())))
                .collect();
            let got: Vec<(i64, u64)> = decode_slot(&encode(&rows), slot)
                .unwrap()
                .into_iter()
                .map(|(ts, v)| (ts, v.to_bits()))
                .collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let _ = decode_slot(&bytes, 3);
        }
    }
}
