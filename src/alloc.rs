//! The server's global allocator: mimalloc for small blocks, the system allocator for
//! large ones.
//!
//! A request allocates dozens of small blocks (its parsed head, strings and header values,
//! the response's header map) and frees them a few microseconds later, often on a burst of
//! hundreds of requests at once. glibc's allocator spends about a sixth of the HTTP
//! side's time on them: a response's header map (1.2 KB) is a "large" request to glibc,
//! and each one first merges every small chunk freed since the last one
//! (`malloc_consolidate`). mimalloc serves such blocks from per-thread free lists.
//!
//! Larger blocks (handler futures, connection buffers, read pages, decompressed segment
//! blocks, request bodies) stay with the system allocator, which returns big ones to the
//! operating system when they are freed. Since no small block is freed there any more,
//! glibc's fast bins stay empty and its larger requests have nothing to merge. With
//! mimalloc for every block, or for blocks up to 32 KB, a catch-up read held more memory
//! and read more slowly (docs/performance.md, "A faster allocator: tried, rejected" and
//! "Eleventh pass"; ADR 0016).
//!
//! Which allocator owns a block follows from its size alone, and a block is freed with
//! the layout it was allocated with, so the two never see each other's blocks. A block
//! that grows or shrinks across the threshold moves from one to the other. SQLite and
//! zstd call the C allocator themselves and are not affected.

#![allow(unsafe_code)] // a `GlobalAlloc` is unsafe by definition; each call forwards

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks up to this size go to mimalloc.
const SMALL_MAX: usize = 2 * 1024;

/// See the module documentation.
pub struct Hybrid;

fn small(size: usize) -> bool {
    size <= SMALL_MAX
}

// SAFETY: every call forwards to one of two allocators that uphold `GlobalAlloc`'s
// contract, chosen by the block's size, which is the same at allocation and at
// deallocation; `realloc` across the threshold allocates in the other one, copies the
// smaller of the two sizes and frees the old block where it came from.
unsafe impl GlobalAlloc for Hybrid {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if small(layout.size()) {
            // SAFETY: the caller's contract, forwarded.
            unsafe { MiMalloc.alloc(layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if small(layout.size()) {
            // SAFETY: as above.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if small(layout.size()) {
            // SAFETY: `ptr` was allocated with this layout, hence by mimalloc.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        } else {
            // SAFETY: `ptr` was allocated with this layout, hence by the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (small(layout.size()), small(new_size)) {
            // SAFETY: the block stays with the allocator that owns it.
            (true, true) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            // SAFETY: as above.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (_, _) => {
                // SAFETY: `new_size` is non-zero and, rounded up to the alignment, does not
                // overflow (`realloc`'s contract), so this layout is valid.
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: a valid, non-zero layout.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller size and do not overlap;
                    // the old one is freed with the layout it was allocated with.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks that grow and shrink across the threshold keep their contents, and every
    /// block is freed by the allocator that made it (a mismatch would crash here).
    #[test]
    fn blocks_keep_their_contents_across_the_threshold() {
        let a = Hybrid;
        for align in [1usize, 8, 64, 4096] {
            let small_layout = Layout::from_size_align(100, align).unwrap();
            // SAFETY: valid layouts; each block is used within its size and freed once with
            // its current layout.
            unsafe {
                let p = a.alloc(small_layout);
                assert!(!p.is_null());
                for i in 0..100 {
                    *p.add(i) = i as u8;
                }
                let big = SMALL_MAX * 3;
                let q = a.realloc(p, small_layout, big);
                assert!(!q.is_null());
                assert_eq!(q as usize % align, 0);
                for i in 0..100 {
                    assert_eq!(*q.add(i), i as u8);
                }
                *q.add(big - 1) = 7;
                let big_layout = Layout::from_size_align(big, align).unwrap();
                let r = a.realloc(q, big_layout, 50);
                assert!(!r.is_null());
                assert_eq!(r as usize % align, 0);
                for i in 0..50 {
                    assert_eq!(*r.add(i), i as u8);
                }
                a.dealloc(r, Layout::from_size_align(50, align).unwrap());

                let z = a.alloc_zeroed(big_layout);
                assert!((0..big).all(|i| *z.add(i) == 0));
                a.dealloc(z, big_layout);
            }
        }
    }
}
