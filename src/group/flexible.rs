//! Kafka's flexible ("compact") encoding as its coordinator records use it, for the records
//! gregor writes to its internal logs in Kafka's schemas (consumer group records in
//! `__consumer_offsets`, share-partition snapshots in `__share_group_state`): unsigned varint
//! lengths plus one (0 for null), compact strings and arrays, and tagged-field sections.
//!
//! [`Reader`] reads untrusted bytes: every method returns `None` rather than read past the end,
//! and an array length is never more than the bytes left.

use bytes::{Buf, BufMut};

/// Writes the flexible encoding.
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.0.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.put_u8(v as u8);
    }

    pub fn len_plus_one(&mut self, len: usize) {
        self.uvarint(u32::try_from(len).unwrap_or(u32::MAX - 1).saturating_add(1));
    }

    pub fn str(&mut self, s: &str) {
        self.len_plus_one(s.len());
        self.0.put_slice(s.as_bytes());
    }

    pub fn nullable_str(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => self.str(s),
        }
    }

    pub fn array_len(&mut self, n: usize) {
        self.len_plus_one(n);
    }

    pub fn no_tags(&mut self) {
        self.uvarint(0);
    }
}

/// Reads the flexible encoding; every method returns `None` rather than read past the end.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// An unsigned varint of at most 5 bytes that fits in a u32.
    pub fn uvarint(&mut self) -> Option<u32> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let byte = self.0.try_get_u8().ok()?;
            if i == 4 && byte > 0x0f {
                return None;
            }
            v |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..len)?, self.0.get(len..)?);
        self.0 = rest;
        Some(head)
    }

    pub fn nullable_str(&mut self) -> Option<Option<String>> {
        let n = self.uvarint()? as usize;
        if n == 0 {
            return Some(None);
        }
        let bytes = self.take(n - 1)?;
        Some(Some(std::str::from_utf8(bytes).ok()?.to_string()))
    }

    pub fn str(&mut self) -> Option<String> {
        self.nullable_str()?
    }

    /// A non-null compact array's length, never more than the bytes left (each element takes
    /// at least one), so that a lying count reserves nothing.
    pub fn array_len(&mut self) -> Option<usize> {
        let n = (self.uvarint()? as usize).checked_sub(1)?;
        (n <= self.0.len()).then_some(n)
    }

    /// The tagged fields section: each field is handed to `field` (tag, bytes).
    pub fn tags(&mut self, mut field: impl FnMut(u32, &[u8]) -> Option<()>) -> Option<()> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let data = self.take(size)?;
            field(tag, data)?;
        }
        Some(())
    }
}
