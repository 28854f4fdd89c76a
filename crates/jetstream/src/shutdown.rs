//! Server shutdown of JetStream: every stream (all accounts) is stopped — consumers saved,
//! store synced and its index snapshot written — on a few threads at once, so the time to
//! exit is that of the slowest streams rather than the sum of every stream's fsyncs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::stream::Stream;

/// Most threads used; fsyncs of different files overlap well, more threads add little.
const MAX_THREADS: usize = 8;

/// Stops `streams`, in parallel when there are several; returns when all are stopped.
pub(crate) fn stop_all(streams: Vec<Arc<Stream>>) {
    let threads = streams.len().min(MAX_THREADS);
    if threads <= 1 {
        for s in &streams {
            s.stop();
        }
        return;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(s) = streams.get(next.fetch_add(1, Ordering::Relaxed)) {
                    s.stop();
                }
            });
        }
    });
}
