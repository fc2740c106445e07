use std::process::ExitCode;

fn main() -> ExitCode {
    let filter = std::env::var("GITOPS_FLOW_LOG").unwrap_or_else(|_| {
        // The runner's debug logging is for this program, not for hyper, rustls or gix.
        if std::env::var("RUNNER_DEBUG").is_ok_and(|v| v == "1") {
            "warn,gitops_flow=debug".into()
        } else {
            "warn".into()
        }
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let env: std::collections::HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    gitops_flow::install_panic_hook(&env);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let argv = std::env::args_os().collect();
    // A panic has printed its `::error::` (the hook); it is a failure like any other.
    std::panic::catch_unwind(move || gitops_flow::run(argv, env, now)).map_or(ExitCode::FAILURE, ExitCode::from)
}
