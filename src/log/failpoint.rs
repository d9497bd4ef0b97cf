//! Fault injection for the log's tests: every step of an append that touches the disk (the
//! `.log` write, each index write, creating a segment's files at a roll, each fsync) calls
//! [`step`], and a test can make the Nth such step fail as a full disk would (ENOSPC), or pause
//! there. In builds other than tests, [`step`] is an empty inline function.

use std::io;

#[cfg(test)]
thread_local! {
    /// Steps still to pass before the armed one fails; `None`: disarmed.
    static COUNTDOWN: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    /// Steps seen on this thread since [`reset`].
    static SEEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Runs at the next step on this thread (see [`on_next_step`]).
    static HOOK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> = const { std::cell::RefCell::new(None) };
}

/// One step of an append that can fail; `Err(ENOSPC)` when a test armed this one.
#[inline(always)]
pub fn step() -> io::Result<()> {
    #[cfg(test)]
    {
        SEEN.with(|s| s.set(s.get() + 1));
        if let Some(hook) = HOOK.with(|h| h.borrow_mut().take()) {
            hook();
        }
        let fire = COUNTDOWN.with(|c| match c.get() {
            Some(0) => {
                c.set(None);
                true
            }
            Some(n) => {
                c.set(Some(n - 1));
                false
            }
            None => false,
        });
        if fire {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
    }
    Ok(())
}

/// Makes the `n`th step from now (0: the next one) fail once, and counts steps from zero.
#[cfg(test)]
pub fn fail_nth(n: u32) {
    COUNTDOWN.with(|c| c.set(Some(n)));
    SEEN.with(|s| s.set(0));
}

/// Disarms and returns how many steps were seen since the last [`fail_nth`] or [`reset`].
#[cfg(test)]
pub fn reset() -> u32 {
    COUNTDOWN.with(|c| c.set(None));
    SEEN.with(|s| s.replace(0))
}

/// True while an armed failure has not fired yet.
#[cfg(test)]
pub fn armed() -> bool {
    COUNTDOWN.with(|c| c.get().is_some())
}

/// Runs `f` at the next step on this thread, once: a test can pause an append there (say,
/// just before a roll's fsync) and look at the log from another thread.
#[cfg(test)]
pub fn on_next_step(f: impl FnOnce() + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
}
