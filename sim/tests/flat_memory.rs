//! A finished madsim task must not keep memory until its runtime is dropped.
//!
//! The simulator spawns one madsim task per message copy, so anything madsim keeps per
//! finished task grows with the messages of a seed and sets the peak memory of a sweep (see
//! `vendor/README.md`). This test counts live heap bytes with its own allocator while one
//! runtime spawns 100,000 short tasks one after another: without the vendored fix the
//! supervisor node's task list holds about 150 bytes per finished task (15 MB here).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TASKS: usize = 100_000;

#[test]
fn finished_tasks_free_their_memory_before_the_runtime_ends() {
    let (before, after) = std::thread::spawn(|| {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        runtime.block_on(async {
            // Warm up whatever madsim allocates once per runtime.
            madsim::task::spawn_local(async {}).await.expect("task");
            let before = LIVE.load(Ordering::Relaxed);
            for _ in 0..TASKS {
                madsim::task::spawn_local(async {
                    madsim::time::sleep(Duration::from_millis(1)).await;
                })
                .await
                .expect("task");
            }
            (before, LIVE.load(Ordering::Relaxed))
        })
    })
    .join()
    .expect("runtime thread");
    let growth = after - before;
    let per_task = growth as f64 / TASKS as f64;
    assert!(
        per_task < 16.0,
        "{TASKS} finished tasks still hold {growth} bytes ({per_task:.1} per task) of heap"
    );
}
