//! Global allocator that makes very large allocations lazy.
//!
//! Why this exists: the `kafka-protocol` codec decodes every array, record and header count with
//! `Vec::with_capacity(count)` taken straight from the wire. A 20-byte request declaring
//! 0x7fffffff elements asks for hundreds of gigabytes; the system allocator refuses and Rust
//! aborts the process, which no `catch_unwind` can stop.
//!
//! Allocations of at least [`LAZY_THRESHOLD`] bytes are therefore served by an anonymous
//! `mmap(MAP_NORESERVE)`: the kernel hands out address space only, and a page costs memory only
//! once it is written. A decoder can only write as many elements as there are bytes left in the
//! frame (itself capped by `socket.request.max.bytes`), so the memory a lying count can make us
//! touch is bounded by the bytes actually present; the rest of the reservation is never backed and
//! is returned on `dealloc`. Everything smaller goes to the system allocator unchanged.
//!
//! Must never: unwind (allocators may not panic), or route a small allocation through `mmap`.
//!
//! Also here: giving freed memory back to the kernel. `main` tunes glibc to keep freed buffers
//! in the heap while the broker is busy (no page faults per request); [`release_when_quiet`]
//! hands them back with `malloc_trim` once requests stop, so idle RSS returns near its start.
//! Connections count their requests with [`note_activity`]; that counter is how "quiet" is seen.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// Counts a request or a connection opened or closed: something that may have allocated.
pub fn note_activity() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
}

/// Returns free heap memory of every allocator arena to the kernel. Takes a few milliseconds
/// with large heaps; call it from a blocking thread.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Decides, once per tick, whether to trim: after activity, once a whole tick has passed
/// without any. Pure, so the rule is tested without a clock.
#[derive(Debug, Clone)]
pub struct QuietTrim {
    last_seen: u64,
    last_trimmed: u64,
}

impl QuietTrim {
    pub fn new(activity: u64) -> Self {
        Self { last_seen: activity, last_trimmed: activity }
    }

    /// `activity` is the counter's value at this tick; true means trim now.
    pub fn tick(&mut self, activity: u64) -> bool {
        let quiet = activity == self.last_seen;
        self.last_seen = activity;
        if quiet && activity != self.last_trimmed {
            self.last_trimmed = activity;
            return true;
        }
        false
    }
}

/// Runs forever: every `every`, trims the heap if there was activity before but none during the
/// last tick. Spawn it on the runtime; abort it to stop.
pub async fn release_when_quiet(every: Duration) {
    let mut rule = QuietTrim::new(ACTIVITY.load(Ordering::Relaxed));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if rule.tick(ACTIVITY.load(Ordering::Relaxed)) {
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

/// Allocations at or above this size are reserved lazily with `mmap`.
pub const LAZY_THRESHOLD: usize = 256 * 1024 * 1024;

const PAGE: usize = 4096;

pub struct LazyLargeAlloc;

fn is_lazy(layout: &Layout) -> bool {
    layout.size() >= LAZY_THRESHOLD && layout.align() <= PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
    let ptr = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        0,
    );
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast()
    }
}

unsafe impl GlobalAlloc for LazyLargeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_lazy(&layout) {
            map(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_lazy(&layout) {
            // Anonymous mappings are zero-filled by the kernel.
            map(layout.size())
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_lazy(&layout) {
            libc::munmap(ptr.cast(), layout.size());
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        match (is_lazy(&layout), is_lazy(&new_layout)) {
            (false, false) => System.realloc(ptr, layout, new_size),
            (true, true) => {
                let moved = libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE);
                if moved == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    moved.cast()
                }
            }
            _ => {
                let new_ptr = self.alloc(new_layout);
                if !new_ptr.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new_ptr
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trims_once_after_activity_stops() {
        let mut rule = super::QuietTrim::new(0);
        assert!(!rule.tick(0), "nothing happened since start");
        assert!(!rule.tick(5), "busy during this tick");
        assert!(!rule.tick(9), "still busy");
        assert!(rule.tick(9), "a quiet tick after activity trims");
        assert!(!rule.tick(9), "and only once");
        assert!(!rule.tick(10));
        assert!(rule.tick(10));
    }

    #[test]
    fn huge_reservation_costs_no_memory_until_written() {
        // 64 GiB of capacity: far more than the machine has, yet only the pushed elements are
        // ever backed by memory.
        let mut v: Vec<u64> = Vec::with_capacity(8 << 30);
        for i in 0..1000 {
            v.push(i);
        }
        assert_eq!(v.iter().sum::<u64>(), 999 * 1000 / 2);
        v.shrink_to_fit();
        assert_eq!(v.len(), 1000);
    }

    #[test]
    fn realloc_across_threshold_keeps_contents() {
        let mut v: Vec<u8> = vec![7; 1024];
        v.reserve(super::LAZY_THRESHOLD);
        assert!(v.iter().all(|&b| b == 7));
        v.shrink_to_fit();
        assert_eq!(v.len(), 1024);
    }
}
