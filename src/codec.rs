//! The byte codec of checkpoints: fixed-width little-endian fields written by [`Enc`] and read
//! back by [`Dec`], every read bounds-checked so that a corrupt file is an error ([`Bad`]),
//! never a panic. A type that saves itself without outside context implements [`Persist`];
//! those that need one (a subscriber's state needs the cell table) take it as an argument.

/// A value that writes itself with [`Enc`] and reads itself back with [`Dec`].
pub trait Persist: Sized {
    fn encode(&self, e: &mut Enc);
    fn decode(d: &mut Dec) -> DecResult<Self>;
}

/// A checkpoint file that does not decode: what is wrong, for the log.
#[derive(Debug)]
pub struct Bad(pub String);

pub type DecResult<T> = Result<T, Bad>;

/// Appends fixed-width little-endian fields (fast to write and read; the file is short-lived).
#[derive(Default)]
pub struct Enc {
    pub buf: Vec<u8>,
}

impl Enc {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub fn opt_i64(&mut self, v: Option<i64>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.i64(v);
        }
    }
    pub fn opt_str(&mut self, v: Option<&str>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.str(v);
        }
    }
    pub fn strs<S: AsRef<str>>(&mut self, v: &[S]) {
        self.u32(v.len() as u32);
        v.iter().for_each(|s| self.str(s.as_ref()));
    }
}

/// Reads what [`Enc`] wrote; every read is bounds-checked (a corrupt file is an error, never a
/// panic).
pub struct Dec<'a> {
    b: &'a [u8],
    at: usize,
    /// The format version the bytes were written in (`u16::MAX`: this build's own), for
    /// decoders that still read an older layout.
    version: u16,
}

impl<'a> Dec<'a> {
    pub fn new(b: &'a [u8]) -> Dec<'a> {
        Dec { b, at: 0, version: u16::MAX }
    }

    /// Bytes written in format `version` (an older checkpoint).
    pub fn with_version(mut self, version: u16) -> Dec<'a> {
        self.version = version;
        self
    }

    /// Whether the bytes were written in format `v` or later.
    pub fn at_least(&self, v: u16) -> bool {
        self.version >= v
    }
    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.at
    }
    pub fn done(&self) -> bool {
        self.at >= self.b.len()
    }
    /// The next `n` bytes as they are.
    pub fn take(&mut self, n: usize) -> DecResult<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let Some(end) = end else { return Err(Bad(format!("truncated field at byte {}", self.at))) };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> DecResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> DecResult<u8> {
        Ok(self.take(1)?[0])
    }
    /// The next `u64`, left to be read again.
    pub fn peek_u64(&self) -> DecResult<u64> {
        Dec { b: self.b, at: self.at, version: self.version }.u64()
    }
    pub fn bool(&mut self) -> DecResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Bad(format!("bad flag {b} at byte {}", self.at - 1))),
        }
    }
    pub fn u16(&mut self) -> DecResult<u16> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    pub fn u32(&mut self) -> DecResult<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub fn u64(&mut self) -> DecResult<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    pub fn i64(&mut self) -> DecResult<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    pub fn str(&mut self) -> DecResult<&'a str> {
        let n = self.u32()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|_| Bad(format!("bad UTF-8 at byte {at}")))
    }
    pub fn opt_i64(&mut self) -> DecResult<Option<i64>> {
        Ok(if self.bool()? { Some(self.i64()?) } else { None })
    }
    pub fn opt_str(&mut self) -> DecResult<Option<&'a str>> {
        Ok(if self.bool()? { Some(self.str()?) } else { None })
    }
    /// A count of items that each take at least `min` bytes, checked against what is left (a
    /// corrupt count must not make a huge allocation).
    pub fn len(&mut self, min: usize) -> DecResult<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min.max(1)) > self.b.len() - self.at {
            return Err(Bad(format!("count {n} past the end at byte {}", self.at - 4)));
        }
        Ok(n)
    }
    pub fn strs(&mut self) -> DecResult<Vec<String>> {
        let n = self.len(4)?;
        (0..n).map(|_| self.str().map(str::to_owned)).collect()
    }
    /// A symbol of the `symbols!` kind from its text.
    pub fn sym<T>(&mut self, parse: fn(&str) -> Option<T>) -> DecResult<T> {
        let s = self.str()?;
        parse(s).ok_or_else(|| Bad(format!("unknown value `{s}`")))
    }
}
