use std::process::ExitCode;

fn main() -> ExitCode {
    let filter = std::env::var("GITOPS_FLOW_LOG").unwrap_or_else(|_| {
        if std::env::var("RUNNER_DEBUG").is_ok_and(|v| v == "1") {
            "debug".into()
        } else {
            "warn".into()
        }
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    ExitCode::from(gitops_flow::run(std::env::args_os().collect(), env, now))
}
