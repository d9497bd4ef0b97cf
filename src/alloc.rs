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

use std::alloc::{GlobalAlloc, Layout, System};

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
