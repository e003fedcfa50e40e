//! Diagnostics: `tracing` to stderr (warnings by default; `-v`, `-vv` or `RUST_LOG` for more),
//! and with `--log-file` the full service log: every join, publish, receive and leave with its
//! Lamport stamp and peer ids, and connection events, one timestamped line each.
//!
//! With the line editor on the terminal, stderr is the chat screen: a diagnostic printed there
//! would break the line being typed. Then this crate's warnings and errors, the ones meant for
//! the user, become [`Notices`]: plain sentences that the ui prints above the prompt
//! (`System: warning: …`); other crates' warnings (yamux, rendezvous, gossipsub…) stay off the
//! screen and go only to `-v` and `--log-file`. Without the line editor, stderr keeps the
//! warnings, coloured only when it is a terminal and `NO_COLOR` is not set.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, mpsc};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Notices waiting for the ui (before it starts, or while it is busy); beyond this they are
/// counted, not kept, and the count is shown.
pub const NOTICES_CAP: usize = 64;

/// Longest notice, in characters; the rest is cut (the log file has it whole).
pub const MAX_NOTICE_CHARS: usize = 400;

/// The log file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the log file {}: {source}", path.display())]
pub struct LogFileError {
    /// The path given to `--log-file`.
    pub path: PathBuf,
    /// Why it could not be opened.
    pub source: std::io::Error,
}

/// The user-facing diagnostics waiting to be shown, as plain text (`warning: …`). Clones share
/// one queue: the ui takes them while it runs, `main` takes what is left after it.
#[derive(Clone)]
pub struct Notices {
    rx: Arc<Mutex<mpsc::Receiver<String>>>,
    dropped: Arc<AtomicU64>,
}

impl Notices {
    /// A queue and the sender that fills it.
    fn new() -> (Notices, NoticeLayer) {
        let (tx, rx) = mpsc::channel(NOTICES_CAP);
        let dropped = Arc::new(AtomicU64::new(0));
        let notices = Notices {
            rx: Arc::new(Mutex::new(rx)),
            dropped: dropped.clone(),
        };
        (notices, NoticeLayer { tx, dropped })
    }

    /// A line about the notices dropped for lack of room since the last call, if any.
    fn dropped_line(&self) -> Option<String> {
        let n = self.dropped.swap(0, Ordering::Relaxed);
        (n > 0)
            .then(|| format!("warning: {n} more warnings at once not shown; --log-file keeps them"))
    }

    /// The next notice; waits for one. Only one caller at a time gets them (the ui).
    pub async fn recv(&self) -> Option<String> {
        if let Some(line) = self.dropped_line() {
            return Some(line);
        }
        self.rx.lock().await.recv().await
    }

    /// Every notice waiting now, without waiting for more.
    pub fn drain(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(mut rx) = self.rx.try_lock() {
            while let Ok(line) = rx.try_recv() {
                out.push(line);
            }
        }
        out.extend(self.dropped_line());
        out
    }
}

/// Whether an event is meant for the user: a warning or an error of this crate.
fn is_notice(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    *meta.level() <= Level::WARN && (target == "chitty_node" || target.starts_with("chitty_node::"))
}

/// Turns events into notices on a bounded queue: never blocks, counts what does not fit.
struct NoticeLayer {
    tx: mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl<S: Subscriber> Layer<S> for NoticeLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = NoticeText::default();
        event.record(&mut text);
        let level = if *event.metadata().level() == Level::ERROR {
            "error"
        } else {
            "warning"
        };
        if self.tx.try_send(text.finish(level)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An event's message and fields as one plain sentence: `warning: MESSAGE (field: value, …)`.
#[derive(Default)]
struct NoticeText {
    message: String,
    fields: String,
}

impl NoticeText {
    fn finish(self, level: &str) -> String {
        let mut out = format!("{level}: {}", self.message);
        if !self.fields.is_empty() {
            let _ = write!(out, " ({})", self.fields);
        }
        plain(&out)
    }
}

impl Visit for NoticeText {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push_str(", ");
            }
            let _ = write!(self.fields, "{}: {value:?}", field.name());
        }
    }
}

/// Text safe for the screen: no control characters (an error may quote what a peer sent), and
/// not longer than [`MAX_NOTICE_CHARS`].
fn plain(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_NOTICE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_NOTICE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Whether stderr may carry colour: a terminal, and no `NO_COLOR` (https://no-color.org).
fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. `line_editor`: the line editor will own the terminal, so this
/// crate's warnings go to the returned [`Notices`] for the ui, and stderr stays quiet unless
/// asked (`-v`, `RUST_LOG`).
pub fn init(
    verbose: u8,
    log_file: Option<&Path>,
    line_editor: bool,
) -> Result<Notices, LogFileError> {
    let default = match verbose {
        0 if line_editor && std::env::var_os("RUST_LOG").is_none() => LevelFilter::OFF,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let stderr_filter = if default == LevelFilter::OFF {
        EnvFilter::new("off")
    } else if verbose == 0 && std::env::var_os("RUST_LOG").is_none() {
        // Other crates' warnings (a rendezvous answer cut short by a client's ordinary exit,
        // yamux's complaints about a peer) mean nothing to a user: `-v` and the log file have
        // them.
        EnvFilter::new(format!("error,chitty_node={default}"))
    } else {
        EnvFilter::builder()
            .with_default_directive(default.into())
            .from_env_lossy()
    };
    // With the line editor, this crate's warnings are shown by the ui as notices: not twice.
    // That filter is a function, evaluated for every span and event of every crate, so it is
    // there only when needed (a static filter costs nothing for what it leaves out; libp2p opens
    // a span for every poll of every connection), and not at all when stderr is off.
    let ansi = colour_on_stderr();
    let (plain, beside_editor) = match (line_editor, default == LevelFilter::OFF) {
        (false, _) => (Some(stderr_filter), None),
        (true, true) => (None, None),
        (true, false) => (None, Some(stderr_filter)),
    };
    let stderr_plain = plain.map(|f| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_filter(f)
    });
    let stderr_beside_editor = beside_editor.map(|f| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_filter(f)
            .with_filter(filter_fn(|meta| !is_notice(meta)))
    });
    let file = match log_file {
        Some(path) => {
            let f: File = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LogFileError {
                    path: path.to_owned(),
                    source,
                })?;
            Some(
                fmt::layer()
                    .with_writer(Arc::new(f))
                    .with_ansi(false)
                    .with_filter(EnvFilter::new("warn,chitty_node=info")),
            )
        }
        None => None,
    };
    let (notices, layer) = Notices::new();
    let layer = line_editor
        .then(|| layer.with_filter(filter_fn(is_notice).with_max_level_hint(LevelFilter::WARN)));
    tracing_subscriber::registry()
        .with(stderr_plain)
        .with(stderr_beside_editor)
        .with(file)
        .with(layer)
        .init();
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_one_plain_line_with_its_fields() {
        let t = NoticeText {
            message: "identity in use".into(),
            fields: "path: /x/\u{1b}[31my.key".into(),
        };
        assert_eq!(
            t.finish("warning"),
            "warning: identity in use (path: /x/ [31my.key)"
        );
        let long = plain(&"x".repeat(MAX_NOTICE_CHARS + 5));
        assert_eq!(long.chars().count(), MAX_NOTICE_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    /// Only this crate's warnings and errors are notices; beyond the queue's room they are
    /// counted, and the count is the last notice.
    #[test]
    fn notices_are_this_crates_warnings_and_the_excess_is_counted() {
        let (notices, layer) = Notices::new();
        let subscriber =
            tracing_subscriber::registry().with(layer.with_filter(filter_fn(is_notice)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "libp2p_yamux", "not ours");
            tracing::info!("not a warning");
            tracing::error!(peer = "p1", "broken");
            for i in 0..NOTICES_CAP + 4 {
                tracing::warn!(i, "too fast");
            }
        });
        let got = notices.drain();
        assert_eq!(got.len(), NOTICES_CAP + 1, "{got:?}");
        assert_eq!(got[0], "error: broken (peer: p1)");
        assert_eq!(got[1], "warning: too fast (i: 0)");
        assert_eq!(
            got[NOTICES_CAP],
            "warning: 5 more warnings at once not shown; --log-file keeps them"
        );
    }
}
