//! Hostile `/metrics` bodies: a gzip bomb, and any body trickled at a set rate.

use std::io::Write;
use std::time::Duration;

use axum::body::{Body, Bytes};
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::Mutex;

/// A series whose label value is not UTF-8 (`0xC3 0x28` is a broken two-byte
/// sequence, `0xFF` never occurs in UTF-8).
pub const INVALID_UTF8_LINE: &[u8] = b"gometr_invalid_utf8{value=\"\xC3\x28\xFF\"} 1\n";

/// The bomb's padding is lines of this comment filled with spaces to
/// [`PADDING_LINE_BYTES`]: what inflates is a valid (if enormous) exposition,
/// so only a size limit can refuse it. Long runs of one byte compress about
/// 1000:1, three times better than repeating a short line.
const PADDING_TEXT: &[u8] = b"# gometr gzip_bomb padding: a scraper must bound what it inflates";
const PADDING_LINE_BYTES: usize = 4096;

fn padding_line() -> Vec<u8> {
    let mut line = PADDING_TEXT.to_vec();
    line.resize(PADDING_LINE_BYTES - 1, b' ');
    line.push(b'\n');
    line
}

/// The last gzip bomb built, by inflated size: compressing 100 MiB costs a
/// noticeable fraction of a second, so it is done once per size, not per scrape.
#[derive(Default)]
pub struct BombCache {
    last: Mutex<Option<(u64, Bytes)>>,
}

impl BombCache {
    /// The gzip body that inflates to exactly `inflated` bytes.
    pub async fn get(&self, inflated: u64) -> Bytes {
        let mut last = self.last.lock().await;
        if let Some((size, body)) = last.as_ref()
            && *size == inflated
        {
            return body.clone();
        }
        let body = tokio::task::spawn_blocking(move || gzip_bomb(inflated))
            .await
            .expect("the gzip bomb builder does not panic");
        *last = Some((inflated, body.clone()));
        body
    }
}

/// Gzip of `inflated` bytes of padding comments, the last one cut to fit and
/// ended by a newline.
pub fn gzip_bomb(inflated: u64) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let chunk = padding_line().repeat(64);
    let mut left = inflated;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        let mut piece = chunk[..n].to_vec();
        if left == n as u64 {
            *piece.last_mut().expect("n > 0") = b'\n';
        }
        encoder.write_all(&piece).expect("writing to a Vec");
        left -= n as u64;
    }
    Bytes::from(encoder.finish().expect("writing to a Vec"))
}

/// `body` streamed at `bytes_per_second`: ten chunks a second (or one byte
/// per chunk below ten bytes a second), each sent after the time its size is
/// worth, so the whole takes at least `len / bytes_per_second` seconds.
pub fn trickle(body: Bytes, bytes_per_second: u64) -> Body {
    let chunk = (bytes_per_second / 10).max(1) as usize;
    let pause = Duration::from_secs_f64(chunk as f64 / bytes_per_second as f64);
    let stream = futures::stream::unfold(body, move |mut rest| async move {
        if rest.is_empty() {
            return None;
        }
        let piece = rest.split_to(chunk.min(rest.len()));
        // A short last piece is still worth its own share of a second.
        tokio::time::sleep(pause.mul_f64(piece.len() as f64 / chunk as f64)).await;
        Some((Ok::<_, std::convert::Infallible>(piece), rest))
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_bomb_is_small_and_inflates_to_exactly_the_size_asked() {
        let inflated = 20 * 1024 * 1024 + 7;
        let body = gzip_bomb(inflated);
        assert!(body.len() < 32 * 1024, "compressed to {} bytes", body.len());
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut text)
            .unwrap();
        assert_eq!(text.len() as u64, inflated);
        assert!(text.starts_with(b"# gometr gzip_bomb padding"));
        assert!(text.ends_with(b"\n"));
    }
}
