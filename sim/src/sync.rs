//! The simulator's one locking rule: a poisoned mutex is still used.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The guarded values are plain data that cannot be left half-updated, so a poisoned lock is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
