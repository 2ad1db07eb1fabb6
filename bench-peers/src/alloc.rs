//! A global allocator that counts live heap bytes while asked to, for the
//! memory row (a cheap load otherwise).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout, forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller's pointer and layout, forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller's pointer, layout and size, forwarded.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Measures a stretch of work: its time, or the heap bytes it leaves
/// allocated (not both at once: counting slows allocation down).
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    count_bytes: bool,
}

/// What a [`Meter`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Made {
    /// How long the work took.
    pub elapsed: Duration,
    /// Heap bytes allocated and not freed by it (0 when not counted).
    pub bytes: i64,
}

/// A [`Meter`] that is running.
pub struct Running {
    t0: Instant,
    count_bytes: bool,
}

impl Meter {
    /// A meter of time.
    pub fn time() -> Meter {
        Meter { count_bytes: false }
    }

    /// A meter of heap bytes.
    pub fn bytes() -> Meter {
        Meter { count_bytes: true }
    }

    /// Starts measuring.
    pub fn start(self) -> Running {
        if self.count_bytes {
            LIVE.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
        }
        Running { t0: Instant::now(), count_bytes: self.count_bytes }
    }
}

impl Running {
    /// Stops measuring.
    pub fn stop(self) -> Made {
        let elapsed = self.t0.elapsed();
        let bytes = if self.count_bytes {
            COUNTING.store(false, Ordering::SeqCst);
            LIVE.load(Ordering::SeqCst)
        } else {
            0
        };
        Made { elapsed, bytes }
    }
}
