//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).

/// Targets whose debug and trace lines print whole client packets or
/// frames, the Socket.IO `auth` payload (a token) and `refresh` events
/// among them: kept at `info` whatever `RUST_LOG` asks, so that no token
/// is logged (tests/node/auth-logs.test.mjs runs the apps at `trace`).
const PACKET_LOGGERS: [&str; 1] = ["tungstenite"];

/// Installs the global subscriber; later calls (as in tests) are no-ops.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let filter = PACKET_LOGGERS
        .iter()
        .filter_map(|target| format!("{target}=info").parse().ok())
        .fold(filter, |filter, directive| filter.add_directive(directive));
    // The only error is a subscriber already installed, which is the no-op.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes where stderr is a file or a container log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
