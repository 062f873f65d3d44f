//! Small shared pieces: the stable hash behind ids and shard routing, subscriber numbers that
//! never print in full, inline short strings, [`ThinSlice`] (the 8-byte list most
//! per-subscriber lists are), "did you mean" hints, files that name themselves in their errors,
//! the thread priority of `realtime_priority`, and the `symbols!` enums spelled as words. Time is
//! in [`crate::time`].
//!
//! The hash must be stable across builds and platforms because action ids derived from it are
//! compared across replays and across releases; that rules out `std`'s randomised hasher.

use std::fmt;

/// An enum of fixed words (`Brand { Gotone = "gotone", .. }`): serde as its text, `ALL`,
/// `NAMES`, `as_str`, `parse` and `Display`. Event fields, profile fields and channels use it.
macro_rules! symbols {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format_args!("unknown value `{}`; expected one of {}", s, $name::NAMES.join(", ")))
                })
            }
        }

        impl $name {
            /// Every value, in declaration order (the order rules and reports use).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every value's text, as it appears in events and rule files.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use symbols;

mod thin;
pub use thin::ThinSlice;

/// Stable 64-bit hash of bytes (xxh3): action ids, derived event ids, control-group buckets.
#[inline]
pub fn stable_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The number behind an action id (`a` and 16 hex digits): a stable hash of the rule, the
/// subscriber, the kind and id of the triggering event and, for a timer, its due time. The same
/// trigger gives the same id on every replay. The generator uses it too, to report the outcome of
/// a call-back the rule pack will make.
pub fn action_hash(
    rule: &str,
    msisdn: Msisdn,
    trigger_kind: &str,
    trigger_id: &str,
    due: Option<crate::time::Millis>,
) -> u64 {
    let due = due.map(i64::to_le_bytes);
    // A timer's due time after a separator; nothing for an event's trigger.
    let (sep, due): (&[u8], &[u8]) = match &due {
        Some(d) => (&[0], d),
        None => (&[], &[]),
    };
    let msisdn = msisdn.raw().to_le_bytes();
    let parts: [&[u8]; 8] =
        [rule.as_bytes(), &[0], &msisdn, trigger_kind.as_bytes(), &[0], trigger_id.as_bytes(), sep, due];
    // Gathered on the stack (every decision makes one), on the heap only when that is short.
    let len = parts.iter().map(|p| p.len()).sum::<usize>();
    let mut stack = [0u8; 128];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    for p in parts {
        buf[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    stable_hash(buf)
}

/// Mixes a 64-bit key (splitmix64 finaliser); used to spread msisdns over shards.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A subscriber number: 5 to 15 digits, kept as an integer plus its digit count so that
/// leading zeros survive. `Display` prints it masked (`138****8000`); the full number is only
/// available through [`Msisdn::full`], which sinks use and logs must not.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(u64);

impl Msisdn {
    const LEN_SHIFT: u32 = 56;

    /// Parses 5 to 15 ASCII digits; anything else is `None`.
    pub fn parse(s: &str) -> Option<Msisdn> {
        let b = s.as_bytes();
        if !(5..=15).contains(&b.len()) {
            return None;
        }
        let mut v: u64 = 0;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
        }
        Some(Msisdn(v | ((b.len() as u64) << Self::LEN_SHIFT)))
    }

    /// The packed value (number and length); stable, usable as a map key or hash input.
    #[inline]
    pub fn raw(self) -> u64 {
        self.0
    }

    /// Rebuilds a number from [`Msisdn::raw`].
    pub fn from_raw(raw: u64) -> Msisdn {
        Msisdn(raw)
    }

    fn len(self) -> usize {
        (self.0 >> Self::LEN_SHIFT) as usize
    }

    fn number(self) -> u64 {
        self.0 & ((1 << Self::LEN_SHIFT) - 1)
    }

    /// The full number, for sinks that must address the subscriber. Never log this.
    pub fn full(self) -> String {
        format!("{:0width$}", self.number(), width = self.len())
    }

    /// The masked form used in logs, explain output and templates: first 3 and last 4 digits.
    pub fn masked(self) -> String {
        let full = self.full();
        if full.len() <= 7 {
            let keep = full.len().saturating_sub(4);
            return format!("{}{}", "*".repeat(keep), &full[keep..]);
        }
        format!("{}****{}", &full[..3], &full[full.len() - 4..])
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

/// Levenshtein distance, for "did you mean" hints in diagnostics.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a small edit distance, if any.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Puts the calling thread under SCHED_FIFO at `priority` (1-99; 0 does nothing), for the
/// threads a waiting IVR caller depends on (`[engine] realtime_priority`). Under the ordinary
/// scheduler a woken thread can wait a scheduler tick (4 ms here) behind whatever else runs on
/// its core; a SCHED_FIFO thread runs as soon as it is woken. The kernel keeps 5 % of each
/// second for everything else (`sched_rt_runtime_us`). Without the permission (CAP_SYS_NICE)
/// this says so once and the thread runs as before.
pub fn realtime(priority: u8, what: &str) {
    if priority == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    let refused = {
        let param = libc::sched_param { sched_priority: i32::from(priority.min(99)) };
        // SAFETY: a plain system call on the calling thread (pid 0) with a valid parameter.
        let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
        (r != 0).then(|| format!("{}; it needs CAP_SYS_NICE", std::io::Error::last_os_error()))
    };
    #[cfg(not(target_os = "linux"))]
    let refused = Some("only Linux has it".to_string());
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Some(why) = refused.filter(|_| !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)) {
        eprintln!(
            "tidings: realtime_priority = {priority}: the {what} thread stays under the ordinary scheduler ({why})"
        );
    }
}

/// A short string kept inline (up to [`SmallStr::INLINE`] bytes: event ids, phone numbers, cell
/// ids), a longer one on the heap. An event's strings were two or three allocations per record,
/// made on the decoding thread and freed on the shard's; as a map key (cell ids) it is compared
/// where it lies in the table instead of behind a pointer.
#[derive(Clone)]
pub struct SmallStr(Repr);

/// Private, so that the inline bytes are always those of a whole `str` (see `From<&str>`).
#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; SmallStr::INLINE] },
    Heap(Box<str>),
}

impl SmallStr {
    /// The longest string kept inline (the whole value is then 24 bytes).
    pub const INLINE: usize = 22;

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let bytes = &buf[..usize::from(*len)];
                // SAFETY: `Repr` is private and only `From<&str>` makes an `Inline`, from the
                // bytes of a `str` of `len` bytes, so these are valid UTF-8. (Checking them again
                // on every read cost about 1 % of a replay.)
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Heap(s) => s,
        }
    }
}

impl From<&str> for SmallStr {
    fn from(s: &str) -> SmallStr {
        if s.len() <= SmallStr::INLINE {
            let mut buf = [0u8; SmallStr::INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            SmallStr(Repr::Inline { len: s.len() as u8, buf })
        } else {
            SmallStr(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for SmallStr {
    fn from(s: String) -> SmallStr {
        match s.len() <= SmallStr::INLINE {
            true => SmallStr::from(s.as_str()),
            false => SmallStr(Repr::Heap(s.into_boxed_str())),
        }
    }
}

impl PartialEq for SmallStr {
    fn eq(&self, other: &SmallStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SmallStr {}

/// As the `str` hashes, so that a map keyed by `SmallStr` is looked up by `&str`.
impl std::hash::Hash for SmallStr {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl std::borrow::Borrow<str> for SmallStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::ops::Deref for SmallStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for SmallStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file that names itself in its errors: "No space left on device" alone does not say which
/// of a run's files (output, outbox, ledger, dead letters) could not be written.
pub struct NamedFile {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl NamedFile {
    pub fn new(file: std::fs::File, path: &std::path::Path) -> NamedFile {
        NamedFile { file, path: path.to_path_buf() }
    }

    /// Creates (truncates) `path`; an error names it.
    pub fn create(path: &std::path::Path) -> std::io::Result<NamedFile> {
        std::fs::File::create(path).map(|f| NamedFile::new(f, path)).map_err(|e| named(path, e))
    }

    pub fn get_ref(&self) -> &std::fs::File {
        &self.file
    }

    /// `sync_data`, its error naming the file.
    pub fn sync_data(&self) -> std::io::Result<()> {
        self.file.sync_data().map_err(|e| named(&self.path, e))
    }
}

impl std::io::Write for NamedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf).map_err(|e| named(&self.path, e))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().map_err(|e| named(&self.path, e))
    }
}

/// `e`, prefixed with the path it concerns (same kind, so callers still match on it).
pub fn named(path: &std::path::Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Asks the CPU to start loading the cache line at `p` (a hint: it reads nothing and cannot fault).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is an architectural hint; any address is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    #[test]
    fn action_ids_stay_what_they_were() {
        // Ids are the outbox's idempotency keys and the operator's handle on an action: a
        // replay by a newer build must give the ids an older one gave.
        use super::{Msisdn, action_hash};
        let m = Msisdn::parse("13800138000").expect("a number");
        let got = [
            action_hash("birthday", m, "usage", "e1", None),
            action_hash("topup_confirmation", m, "topup", "ev-99", Some(1_700_000_000_000)),
        ];
        assert_eq!(got.map(|h| format!("{h:016x}")), ["16b0748b9f2c03db", "b92a712d3dfce099"]);
        // Past the stack buffer (a long rule name or event id) the same bytes are hashed.
        for (rule, id) in
            [("r".repeat(60), "x".repeat(60)), ("长".repeat(40), "ev-1".into()), ("r".into(), String::new())]
        {
            for due in [None, Some(-5), Some(1_700_000_000_000)] {
                let mut b = [rule.as_bytes(), &[0], &m.raw().to_le_bytes(), b"crm", &[0], id.as_bytes()].concat();
                if let Some(d) = due {
                    b.extend_from_slice(&[0]);
                    b.extend_from_slice(&i64::to_le_bytes(d));
                }
                assert_eq!(action_hash(&rule, m, "crm", &id, due), super::stable_hash(&b), "{rule} {id} {due:?}");
            }
        }
    }

    #[test]
    fn a_write_error_names_the_file() {
        use std::io::Write as _;
        let path = std::path::Path::new("/dev/full");
        let mut f = std::io::BufWriter::new(NamedFile::create(path).unwrap());
        let e = f.write_all(&[b'x'; 100_000]).and_then(|()| f.flush()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        assert!(e.to_string().starts_with("/dev/full: "), "{e}");
    }

    use super::*;

    #[test]
    fn msisdn_masks_and_keeps_leading_zeros() {
        let m = Msisdn::parse("13800138000").unwrap();
        assert_eq!(m.to_string(), "138****8000");
        assert_eq!(m.full(), "13800138000");
        let z = Msisdn::parse("0081234").unwrap();
        assert_eq!(z.full(), "0081234");
        assert!(Msisdn::parse("1234").is_none());
        assert!(Msisdn::parse("1380013800a").is_none());
        assert!(Msisdn::parse("1234567890123456").is_none());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn realtime_puts_the_thread_under_sched_fifo_when_allowed() {
        let (policy, root) = std::thread::spawn(|| {
            realtime(3, "test");
            // SAFETY: plain system calls about the calling thread and process.
            unsafe { (libc::sched_getscheduler(0), libc::geteuid() == 0) }
        })
        .join()
        .expect("thread");
        // As root (CI, the bench) the thread is SCHED_FIFO; otherwise it stays as it was.
        assert_eq!(policy, if root { libc::SCHED_FIFO } else { libc::SCHED_OTHER });
        let other = std::thread::spawn(|| {
            realtime(0, "test");
            // SAFETY: as above.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .expect("thread");
        assert_eq!(other, libc::SCHED_OTHER, "0 leaves the thread alone");
    }

    #[test]
    fn small_strings_keep_their_text_inline_or_not() {
        for s in [
            "",
            "e0000000001",
            "1234567890123456789012",
            "12345678901234567890123",
            "长途电话-国际漫游-中国移动通信",
            "x".repeat(300).as_str(),
        ] {
            let t = SmallStr::from(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(SmallStr::from(s.to_string()), t);
            assert_eq!(matches!(t.0, Repr::Inline { .. }), s.len() <= 22, "{s}");
            assert_eq!(format!("{t}"), s);
        }
        assert_eq!(std::mem::size_of::<SmallStr>(), 24);
        assert_eq!(std::mem::size_of::<Option<SmallStr>>(), 24);
    }
}
