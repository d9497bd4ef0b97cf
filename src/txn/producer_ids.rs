//! Producer ids, never handed out twice: by this data directory (one node), or by any broker
//! of the cluster (shared mode, where the blocks come from the coordination store).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Producer ids are handed out from blocks; a block is recorded (on disk, or in the cluster's
/// store) before any id of it is used, so ids stay unique across restarts (at the cost of
/// skipping the unused rest of a block).
const BLOCK: i64 = 1000;
const FILE: &str = "producer-ids";

/// Where blocks of producer ids come from when the data directory is not the only user of them.
pub trait IdBlocks: Send + Sync + std::fmt::Debug {
    /// Reserves `size` ids no one else is ever given; returns the first. Called on a thread
    /// that may block (never on the async runtime's workers).
    fn allocate(&self, size: i64) -> io::Result<i64>;
}

#[derive(Debug)]
enum Source {
    /// The next block starts where the number in this file says.
    File(PathBuf),
    Blocks(Box<dyn IdBlocks>),
}

#[derive(Debug)]
pub struct ProducerIdManager {
    source: Source,
    /// (next id to hand out, end of the current block)
    state: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn open(root: &Path) -> io::Result<Self> {
        let path = root.join(FILE);
        let next = match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| io::Error::other(format!("{} does not hold a producer id block", path.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(Self { source: Source::File(path), state: Mutex::new((next, next)) })
    }

    /// Ids taken in blocks from `blocks` (shared mode).
    pub fn with_blocks(blocks: Box<dyn IdBlocks>) -> Self {
        Self { source: Source::Blocks(blocks), state: Mutex::new((0, 0)) }
    }

    /// A producer id never handed out before. May block for a new block: call it off the
    /// async runtime.
    pub fn next_id(&self) -> io::Result<i64> {
        let mut state = self.state.lock();
        if state.0 >= state.1 {
            let start = match &self.source {
                Source::File(path) => {
                    let end = state.0 + BLOCK;
                    let tmp = path.with_extension("tmp");
                    let mut f = fs::File::create(&tmp)?;
                    f.write_all(end.to_string().as_bytes())?;
                    f.sync_all()?;
                    fs::rename(&tmp, path)?;
                    state.0
                }
                Source::Blocks(blocks) => blocks.allocate(BLOCK)?,
            };
            *state = (start, start + BLOCK);
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!((m.next_id().unwrap(), m.next_id().unwrap()), (0, 1));
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(m.next_id().unwrap(), BLOCK);
    }

    /// Blocks handed out elsewhere (another broker took 0..1000 first).
    #[derive(Debug, Default)]
    struct Counter(AtomicI64);

    impl IdBlocks for Counter {
        fn allocate(&self, size: i64) -> io::Result<i64> {
            Ok(self.0.fetch_add(size, Ordering::SeqCst))
        }
    }

    #[test]
    fn ids_come_from_the_blocks_the_source_gives() {
        let counter = Counter(AtomicI64::new(BLOCK));
        let m = ProducerIdManager::with_blocks(Box::new(counter));
        assert_eq!(m.next_id().unwrap(), BLOCK, "the first id is the block's first");
        for expected in BLOCK + 1..2 * BLOCK {
            assert_eq!(m.next_id().unwrap(), expected);
        }
        assert_eq!(m.next_id().unwrap(), 2 * BLOCK, "a used-up block is followed by a new one");
    }
}
