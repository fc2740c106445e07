//! Switches for the integration tests, which run the debug binary: a deliberate
//! crash (to see the panic hook end to end) and a pause between reading the holds and
//! writing (to land a lock in between). Compiled into debug builds only: a release
//! build — the action's image, the published binaries — reads none of these variables.

use std::collections::HashMap;
use std::time::Duration;

/// `GITOPS_FLOW_TEST_CRASH=1`: the run should panic at once.
pub fn crash_requested(env: &HashMap<String, String>) -> bool {
    cfg!(debug_assertions) && env.get("GITOPS_FLOW_TEST_CRASH").is_some_and(|v| v == "1")
}

/// `GITOPS_FLOW_TEST_WRITE_DELAY_MS`: how long to pause before a guarded write (at most
/// 10 s).
pub fn write_delay(env: &HashMap<String, String>) -> Option<Duration> {
    if !cfg!(debug_assertions) {
        return None;
    }
    env.get("GITOPS_FLOW_TEST_WRITE_DELAY_MS")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.min(10_000)))
}
