//! Where the small security stores keep their records — the ACLs, the SCRAM credentials and
//! the client quotas — and how a change to them is made safely.
//!
//! Each store is one document of JSON lines, held in memory and kept by a [`Keeper`]: on one
//! node a file of the data directory ([`FileKeeper`]), in shared mode a row of the cluster's
//! coordination store, which every broker reads. A document has a version that every change
//! moves. A change ([`Records::change`]) is made to the document as kept now and written only
//! if nobody changed it meanwhile; otherwise it is made again on the newer document. So two
//! brokers changing the ACLs at once both get their change, and a broker never acknowledges a
//! change that is not kept. Brokers that did not make a change take it up when they see the
//! version move ([`Records::follow`]).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard};

/// A document as kept: its version (0 for one never written) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub version: i64,
    pub text: String,
}

/// Where documents are kept. Calls may block (a file's fsync, a query): make them from
/// blocking threads.
pub trait Keeper: Send + Sync + fmt::Debug {
    /// The document `name` as kept now.
    fn read(&self, name: &str) -> io::Result<Document>;
    /// Replaces document `name`, if it is still in `version`, with `text`: its new version, or
    /// `None` (nothing written) when somebody changed it since.
    fn replace(&self, name: &str, version: i64, text: &str) -> io::Result<Option<i64>>;
}

/// One node's documents: `<dir>/__<name>.json`, replaced atomically and durably, readable by
/// the broker's user only. The process is their only writer, so versions live in memory.
#[derive(Debug)]
pub struct FileKeeper {
    dir: PathBuf,
    versions: Mutex<HashMap<String, i64>>,
}

impl FileKeeper {
    pub fn new(dir: &Path) -> Arc<Self> {
        Arc::new(Self { dir: dir.to_path_buf(), versions: Mutex::new(HashMap::new()) })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("__{name}.json"))
    }
}

impl Keeper for FileKeeper {
    fn read(&self, name: &str) -> io::Result<Document> {
        let text = match std::fs::read_to_string(self.file(name)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        Ok(Document { version: self.versions.lock().get(name).copied().unwrap_or(0), text })
    }

    fn replace(&self, name: &str, version: i64, text: &str) -> io::Result<Option<i64>> {
        let mut versions = self.versions.lock();
        let now = versions.entry(name.to_string()).or_insert(0);
        if *now != version {
            return Ok(None);
        }
        let file = self.file(name);
        crate::metadata::write_atomically(&self.dir, &file, text.as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        *now += 1;
        Ok(Some(*now))
    }
}

/// What a store's document holds, and how it is written as JSON lines.
pub trait Lines: Clone + PartialEq + Default + Send + Sync {
    /// One line's record.
    type Line: serde::Serialize + serde::de::DeserializeOwned;
    fn from_lines(lines: Vec<Self::Line>) -> Result<Self, String>;
    fn to_lines(&self) -> Vec<Self::Line>;
}

/// A set, a member per line (the ACLs).
impl<T> Lines for std::collections::BTreeSet<T>
where
    T: Ord + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned,
{
    type Line = T;
    fn from_lines(lines: Vec<T>) -> Result<Self, String> {
        Ok(lines.into_iter().collect())
    }
    fn to_lines(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }
}

/// How many times a change is made again on a newer document before it is given up.
const ATTEMPTS: usize = 16;

/// A store's records in memory and the keeper that keeps them.
pub struct Records<T> {
    name: &'static str,
    keeper: Arc<dyn Keeper>,
    /// The records and the version of the document they were read from or written as. Held
    /// only to read or swap them, never while the keeper is asked: requests check the ACLs on
    /// the runtime's threads, and the keeper may need those threads to answer.
    state: RwLock<(i64, T)>,
    /// One change or reload of the records at a time.
    changing: Mutex<()>,
}

impl<T: fmt::Debug> fmt::Debug for Records<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records").field("name", &self.name).field("keeper", &self.keeper).finish()
    }
}

impl<T: Lines> Records<T> {
    /// Reads document `name` from `keeper`.
    pub fn open(keeper: Arc<dyn Keeper>, name: &'static str) -> io::Result<Self> {
        let doc = keeper.read(name)?;
        let records = parse::<T>(name, &doc.text)?;
        Ok(Self { name, keeper, state: RwLock::new((doc.version, records)), changing: Mutex::new(()) })
    }

    /// The records as this broker last read or wrote them.
    pub fn get(&self) -> MappedRwLockReadGuard<'_, T> {
        RwLockReadGuard::map(self.state.read(), |(_, t)| t)
    }

    /// The version of the document the records in memory are.
    pub fn version(&self) -> i64 {
        self.state.read().0
    }

    /// Reads the document again when it is no longer in `version` (as another broker said).
    pub fn follow(&self, version: i64) -> io::Result<()> {
        if self.version() == version {
            return Ok(());
        }
        let _changing = self.changing.lock();
        let (version, records) = self.kept()?;
        *self.state.write() = (version, records);
        Ok(())
    }

    /// The records as kept now, and their version.
    fn kept(&self) -> io::Result<(i64, T)> {
        let doc = self.keeper.read(self.name)?;
        let state = self.state.read();
        if doc.version == state.0 {
            return Ok((state.0, state.1.clone()));
        }
        drop(state);
        Ok((doc.version, parse::<T>(self.name, &doc.text)?))
    }

    /// Makes `change` to the records as kept now and keeps the result (if it changed them):
    /// what `change` returned, and whether the result is kept. When it is not, the records are
    /// as they were. `change` may run more than once, each time on newer records.
    pub fn change<R>(&self, mut change: impl FnMut(&mut T) -> R) -> (R, io::Result<()>) {
        let _changing = self.changing.lock();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (version, current) = match self.kept() {
                Ok(kept) => kept,
                Err(e) => {
                    let mut scratch = self.get().clone();
                    return (change(&mut scratch), Err(e));
                }
            };
            let mut next = current.clone();
            let out = change(&mut next);
            if next == current {
                *self.state.write() = (version, current);
                return (out, Ok(()));
            }
            match self.keeper.replace(self.name, version, &render(&next)) {
                Ok(Some(version)) => {
                    *self.state.write() = (version, next);
                    return (out, Ok(()));
                }
                Ok(None) if attempt < ATTEMPTS => continue,
                Ok(None) => {
                    let why = format!("the {} kept changed {ATTEMPTS} times while this change was made", self.name);
                    return (out, Err(io::Error::other(why)));
                }
                Err(e) => return (out, Err(e)),
            }
        }
    }
}

fn parse<T: Lines>(name: &str, text: &str) -> io::Result<T> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("the kept {name}: {why}"));
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(format!("line {}: {e}", i + 1))))
        .collect::<io::Result<Vec<T::Line>>>()?;
    T::from_lines(lines).map_err(bad)
}

fn render<T: Lines>(records: &T) -> String {
    let mut text = String::new();
    for line in records.to_lines() {
        text.push_str(&serde_json::to_string(&line).expect("records of strings and numbers are JSON"));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Two processes' view of one shared keeper: each replace moves one version.
    #[derive(Debug, Default)]
    struct SharedKeeper {
        doc: Mutex<Document>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Keeper for SharedKeeper {
        fn read(&self, _: &str) -> io::Result<Document> {
            Ok(self.doc.lock().clone())
        }
        fn replace(&self, _: &str, version: i64, text: &str) -> io::Result<Option<i64>> {
            if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(io::Error::other("the store is away"));
            }
            let mut doc = self.doc.lock();
            if doc.version != version {
                return Ok(None);
            }
            *doc = Document { version: version + 1, text: text.into() };
            Ok(Some(doc.version))
        }
    }

    #[test]
    fn changes_made_through_two_brokers_both_stay_and_a_change_not_kept_is_not_made() {
        let keeper = Arc::new(SharedKeeper::default());
        let a = Records::<BTreeSet<String>>::open(keeper.clone(), "things").unwrap();
        let b = Records::<BTreeSet<String>>::open(keeper.clone(), "things").unwrap();
        let ((), kept) = a.change(|s| {
            s.insert("from a".into());
        });
        kept.unwrap();
        // b has not read a's change: it is made on the document as kept, not on b's copy.
        assert!(b.get().is_empty());
        let ((), kept) = b.change(|s| {
            s.insert("from b".into());
        });
        kept.unwrap();
        assert_eq!(b.get().len(), 2, "{:?}", *b.get());
        assert_eq!(keeper.read("things").unwrap().text, "\"from a\"\n\"from b\"\n");
        // a follows when the version it is told of is not its own.
        a.follow(a.version()).unwrap();
        assert_eq!(a.get().len(), 1);
        a.follow(b.version()).unwrap();
        assert_eq!(*a.get(), *b.get());

        keeper.fail.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ran, kept) = a.change(|s| s.remove("from a"));
        assert!(ran && kept.is_err());
        assert_eq!(a.get().len(), 2, "a change that was not kept is not made");
        keeper.fail.store(false, std::sync::atomic::Ordering::Relaxed);
        let (_, kept) = a.change(|_| ());
        kept.unwrap();
        assert_eq!(keeper.read("things").unwrap().version, 2, "no change, nothing written");
    }

    #[test]
    fn a_file_keeper_keeps_documents_for_the_broker_alone() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = FileKeeper::new(dir.path());
        let r = Records::<BTreeSet<String>>::open(keeper.clone(), "things").unwrap();
        r.change(|s| s.insert("x".into())).1.unwrap();
        let again = Records::<BTreeSet<String>>::open(FileKeeper::new(dir.path()), "things").unwrap();
        assert_eq!(*again.get(), BTreeSet::from(["x".to_string()]));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("__things.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("__things.json"), "\"x\"\nnot json\n").unwrap();
        let err = Records::<BTreeSet<String>>::open(FileKeeper::new(dir.path()), "things").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
