//! The log's descriptor budget: segment files are opened through one [`FileCache`] per broker,
//! which keeps at most `cap` of them open and closes the least recently used one when a file it
//! does not hold is needed. A segment nobody reads or writes therefore holds no descriptor, and
//! 20,000 partitions fit under `ulimit -n 4096`.
//!
//! A [`CachedFile`] names one file and how to open it; [`CachedFile::get`] returns the open file,
//! opening it again if it was closed. Closing loses nothing: written bytes are in the page cache,
//! and an fsync through a later descriptor of the same file makes them durable. A caller holding
//! the returned `Arc<File>` keeps the descriptor alive until it is done, so the open count can
//! exceed the cap by the reads and writes in flight (few: they are bounded by requests).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

/// `RLIMIT_NOFILE`'s soft value: how many descriptors this process may hold open.
pub fn soft_open_file_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        u64::MAX
    }
}

/// How a file is opened again after the cache closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A segment's `.log`: read anywhere, write at the end.
    ReadAppend,
    /// An index file: entries are only appended.
    Append,
}

#[derive(Debug)]
pub struct FileCache {
    cap: usize,
    open: Mutex<LruCache<u64, Arc<File>>>,
    next_id: AtomicU64,
    /// Files opened again after the cache had closed them, for tests and diagnostics.
    reopened: AtomicU64,
}

impl FileCache {
    /// A cache that keeps at most `cap` files open (at least one).
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            open: Mutex::new(LruCache::unbounded()),
            next_id: AtomicU64::new(0),
            reopened: AtomicU64::new(0),
        })
    }

    /// A cache that never closes a file on its own (tests, tools).
    pub fn unbounded() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    /// The budget for a process whose open-file limit is `soft_limit`: half of it, the rest
    /// being left to connections and to files opened briefly (directory syncs, metadata).
    pub fn cap_for_limit(soft_limit: u64) -> usize {
        usize::try_from(soft_limit / 2).unwrap_or(usize::MAX).max(16)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Files the cache holds open now.
    pub fn open_count(&self) -> usize {
        self.open.lock().len()
    }

    pub fn reopened(&self) -> u64 {
        self.reopened.load(Ordering::Relaxed)
    }

    /// Names an existing file; nothing is opened until [`CachedFile::get`].
    pub fn file(self: &Arc<Self>, path: PathBuf, access: Access) -> CachedFile {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        CachedFile(Arc::new(Handle { id, path, access, cache: self.clone(), deleted: AtomicBool::new(false) }))
    }

    /// Names a file that was just opened (created) as `file`, keeping it open.
    pub fn adopt(self: &Arc<Self>, path: PathBuf, access: Access, file: File) -> CachedFile {
        let cached = self.file(path, access);
        self.insert(cached.0.id, Arc::new(file));
        cached
    }

    /// Holds `file` open under `id`, closing the least recently used files beyond the cap.
    /// Returns the file the cache now holds for `id` (another thread may have been first).
    fn insert(&self, id: u64, file: Arc<File>) -> Arc<File> {
        let mut evicted = Vec::new();
        let held = {
            let mut open = self.open.lock();
            let held = open.get_or_insert(id, || file).clone();
            while open.len() > self.cap {
                match open.pop_lru() {
                    Some(entry) => evicted.push(entry),
                    None => break,
                }
            }
            held
        };
        // Descriptors are closed after the lock is released.
        drop(evicted);
        held
    }
}

/// One segment file, open or not. Clones share the name; the cache forgets the file once the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub struct CachedFile(Arc<Handle>);

#[derive(Debug)]
struct Handle {
    id: u64,
    path: PathBuf,
    access: Access,
    cache: Arc<FileCache>,
    /// The file was removed: never open the path again (a new file may carry the name).
    deleted: AtomicBool,
}

impl CachedFile {
    /// The open file, opening it again if the cache had closed it.
    pub fn get(&self) -> io::Result<Arc<File>> {
        let h = &self.0;
        if let Some(file) = h.cache.open.lock().get(&h.id) {
            return Ok(file.clone());
        }
        if h.deleted.load(Ordering::Acquire) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} was deleted", h.path.display())));
        }
        let mut options = OpenOptions::new();
        match h.access {
            Access::ReadAppend => options.read(true).append(true),
            Access::Append => options.append(true),
        };
        let file = Arc::new(options.open(&h.path)?);
        h.cache.reopened.fetch_add(1, Ordering::Relaxed);
        Ok(h.cache.insert(h.id, file))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Closes the file (if open) and removes it. Readers holding it open keep reading it;
    /// readers that need it opened again are told it is gone.
    pub fn remove(&self) -> io::Result<()> {
        self.0.deleted.store(true, Ordering::Release);
        let closed = self.0.cache.open.lock().pop(&self.0.id);
        drop(closed);
        match std::fs::remove_file(&self.0.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Closes the file and never opens its path again, without removing it (another file now
    /// carries the name).
    pub fn retire(&self) {
        self.0.deleted.store(true, Ordering::Release);
        let closed = self.0.cache.open.lock().pop(&self.0.id);
        drop(closed);
    }

    /// Closes the file now if the cache holds it open (it is opened again when next needed).
    pub fn close(&self) {
        let closed = self.0.cache.open.lock().pop(&self.0.id);
        drop(closed);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let closed = self.cache.open.lock().pop(&self.id);
        drop(closed);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn open_descriptors() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn at_most_cap_files_stay_open_and_closed_ones_reopen_with_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(3);
        let files: Vec<CachedFile> = (0..10)
            .map(|i| {
                let path = dir.path().join(format!("{i}.log"));
                let f = OpenOptions::new().create(true).read(true).append(true).open(&path).unwrap();
                cache.adopt(path, Access::ReadAppend, f)
            })
            .collect();
        assert_eq!(cache.open_count(), 3);
        for (i, f) in files.iter().enumerate() {
            (&*f.get().unwrap()).write_all(format!("file {i}").as_bytes()).unwrap();
            assert!(cache.open_count() <= 3);
        }
        for (i, f) in files.iter().enumerate().rev() {
            let want = format!("file {i}");
            let mut got = vec![0u8; want.len()];
            std::os::unix::fs::FileExt::read_exact_at(&*f.get().unwrap(), &mut got, 0).unwrap();
            assert_eq!(got, want.as_bytes());
        }
        assert!(cache.reopened() >= 7);
        drop(files);
        assert_eq!(cache.open_count(), 0, "dropped names close their files");
    }

    #[test]
    fn the_least_recently_used_file_is_the_one_closed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(2);
        let name = |i: i32| {
            let path = dir.path().join(format!("{i}"));
            File::create(&path).unwrap();
            cache.file(path, Access::Append)
        };
        let (a, b, c) = (name(1), name(2), name(3));
        a.get().unwrap();
        b.get().unwrap();
        a.get().unwrap();
        let before = cache.reopened();
        c.get().unwrap(); // closes b, the least recently used
        a.get().unwrap();
        assert_eq!(cache.reopened(), before + 1, "a stayed open");
        b.get().unwrap();
        assert_eq!(cache.reopened(), before + 2, "b had been closed");
    }

    #[test]
    fn descriptors_held_track_the_cap_not_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(8);
        let start = open_descriptors();
        let files: Vec<CachedFile> = (0..200)
            .map(|i| {
                let path = dir.path().join(format!("{i}"));
                File::create(&path).unwrap();
                let f = cache.file(path, Access::ReadAppend);
                f.get().unwrap();
                f
            })
            .collect();
        // Other tests in this process open files too: allow for them.
        assert!(open_descriptors() < start + 8 + 20, "{} descriptors open", open_descriptors());
        drop(files);
    }

    #[test]
    fn a_removed_file_is_never_opened_again_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(4);
        let path = dir.path().join("0.log");
        std::fs::write(&path, b"old").unwrap();
        let f = cache.file(path.clone(), Access::ReadAppend);
        f.get().unwrap();
        f.remove().unwrap();
        std::fs::write(&path, b"a new file of the same name").unwrap();
        assert_eq!(f.get().unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
