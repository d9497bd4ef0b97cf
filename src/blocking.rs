//! Waiting for async work from a blocking thread (a handler's `spawn_blocking` part, start-up
//! work) without `Handle::block_on`, which panics when its thread runs async code.

use std::future::Future;

/// Runs `work` on `runtime` and waits on this thread for its output; `None` when the runtime
/// dropped it (shutting down). It cannot panic wherever it is called, but a runtime worker
/// that calls it is blocked until `work` ends: call it from blocking threads.
pub fn wait_on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv().ok()
}
