//! Producer ids, unique for the life of a data directory.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Producer ids are handed out from blocks; a block is recorded on disk before any id of it is
/// used, so ids stay unique across restarts (at the cost of skipping the unused rest of a block).
const BLOCK: i64 = 1000;
const FILE: &str = "producer-ids";

#[derive(Debug)]
pub struct ProducerIdManager {
    path: PathBuf,
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
        Ok(Self { path, state: Mutex::new((next, next)) })
    }

    /// A producer id never handed out before, by this data directory.
    pub fn next_id(&self) -> io::Result<i64> {
        let mut state = self.state.lock();
        if state.0 >= state.1 {
            let end = state.0 + BLOCK;
            let tmp = self.path.with_extension("tmp");
            let mut f = fs::File::create(&tmp)?;
            f.write_all(end.to_string().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!((m.next_id().unwrap(), m.next_id().unwrap()), (0, 1));
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(m.next_id().unwrap(), BLOCK);
    }
}
