//! Opaque keyset-pagination cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Position after the last item of a page: a timestamp (microseconds) and an id
/// that breaks ties. Clients see it only as an opaque string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub ts_micros: i64,
    pub id: i64,
}

/// A cursor string that was not made by [`Cursor::encode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor: pass next_cursor from a previous response unchanged")]
pub struct MalformedCursor;

const VERSION: &str = "c1";

/// PostgreSQL's earliest timestamp, 4714-11-24 00:00:00 BC, in Unix microseconds.
/// Every stored row is at or after it, so a cursor before it was not made by us.
pub const EARLIEST_MICROS: i64 = -210_866_803_200_000_000;

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{VERSION}:{}:{}", self.ts_micros, self.id))
    }

    pub fn decode(text: &str) -> Result<Cursor, MalformedCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| MalformedCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| MalformedCursor)?;
        let mut parts = text.split(':');
        if parts.next() != Some(VERSION) {
            return Err(MalformedCursor);
        }
        let ts_micros = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or(MalformedCursor)?;
        let id = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or(MalformedCursor)?;
        if parts.next().is_some() {
            return Err(MalformedCursor);
        }
        // The position must be a time the database and chrono can both hold.
        if ts_micros < EARLIEST_MICROS
            || chrono::DateTime::from_timestamp_micros(ts_micros).is_none()
        {
            return Err(MalformedCursor);
        }
        Ok(Cursor { ts_micros, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let c = Cursor {
            ts_micros: -5,
            id: 1 << 40,
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn the_earliest_time_postgresql_holds_is_a_valid_cursor() {
        let c = Cursor {
            ts_micros: EARLIEST_MICROS,
            id: 1,
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "!!",
            "abc",
            &URL_SAFE_NO_PAD.encode("c1:1"),
            &URL_SAFE_NO_PAD.encode("c2:1:2"),
            &URL_SAFE_NO_PAD.encode(format!("c1:{}:1", EARLIEST_MICROS - 1)),
            &URL_SAFE_NO_PAD.encode(format!("c1:{}:1", i64::MIN)),
            &URL_SAFE_NO_PAD.encode(format!("c1:{}:1", i64::MAX)),
        ] {
            assert_eq!(Cursor::decode(bad), Err(MalformedCursor), "{bad}");
        }
    }
}
