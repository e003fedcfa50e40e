//! The wiring: one process's tasks and channels. [`run`] starts a participant (its event loop
//! and its ui, joined by two bounded channels), a hub, or both side by side, and stops them in
//! order; [`shutdown_signal`] turns the signals that mean "leave" into a future.

use std::future::Future;
use std::io::IsTerminal;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::cli::{Config, Role};
use crate::core::event::ChatEvent;
use crate::net::NetError;
use crate::store::{Store, StoreError};
use crate::{core, identity, logging, net, ui};

/// User commands waiting for the event loop.
pub const COMMANDS_CAP: usize = 64;
/// Events waiting for the ui to print them.
pub const EVENTS_CAP: usize = 1024;

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The identity file could not be used.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The history database cannot be used (exit code 1: its message says what to do).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RunError {
    /// Whether the user can fix it by changing the command line (exit code 2).
    pub fn is_usage(&self) -> bool {
        // A file that is not a key, or no home for the default one: the command line fixes it.
        // A failing disk is not a usage error.
        matches!(
            self,
            RunError::Identity(
                identity::IdentityError::Decode { .. }
                    | identity::IdentityError::NoHome
                    | identity::IdentityError::NoDirectory { .. }
            )
        ) || matches!(
            self,
            // A directory given where a file belongs, or a file where a directory does.
            RunError::Identity(identity::IdentityError::Io { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::IsADirectory | std::io::ErrorKind::NotADirectory
            )
        )
    }
}

/// How the participant's ui will meet the user (see [`uses_terminal`]).
pub fn ui_mode(config: &Config) -> ui::Mode {
    match (uses_terminal(config), config.plain) {
        (false, _) => ui::Mode::Plain,
        (true, true) => ui::Mode::LineEditor,
        (true, false) => ui::Mode::Screen,
    }
}

/// Whether the node will read the keyboard from a terminal (the chat screen or the line editor):
/// a participant with human output, with a terminal on stdin and stdout.
pub fn uses_terminal(config: &Config) -> bool {
    !config.json
        && !matches!(config.role, Role::Hub)
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal()
}

/// Runs a node until it has left the room (after `/quit`, the end of input, or `shutdown`), or a
/// hub until `shutdown`; a hub given a username runs both, the participant reaching the hub on
/// loopback, and stops when the participant leaves. A participant's ui shows `notices` (from
/// [`logging::init`]) above the prompt.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    notices: logging::Notices,
) -> Result<(), RunError> {
    if config.export {
        return export(&config);
    }
    // Held until the node stops: its lock keeps a second process off the same key.
    let identity = match &config.identity {
        Some(path) => Some(identity::load_locked(path, !config.identity_given)?),
        None => None,
    };
    let keypair = match &identity {
        Some(id) => id.keypair.clone(),
        None => Keypair::generate_ed25519(),
    };
    let json = config.json;
    let hub_config = |keypair, listen| -> Result<net::hub::HubConfig, RunError> {
        Ok(net::hub::HubConfig {
            keypair,
            listen,
            history: config.history,
            store: open_store(&config, true)?,
        })
    };
    match config.role.clone() {
        Role::Hub => {
            let format = if json {
                ui::render::Format::Json
            } else {
                ui::render::Format::HubLog
            };
            let (ev_tx, ev_rx) = mpsc::channel(EVENTS_CAP);
            let span = tracing::info_span!("hub", peer = %keypair.public().to_peer_id());
            let hub = net::hub::Hub::new(hub_config(keypair, config.listen.clone())?, ev_tx)?;
            let ui = tokio::spawn(ui::run_log(format, ev_rx));
            let result = hub.run(shutdown).instrument(span).await;
            if let Err(e) = ui.await {
                tracing::error!(error = %e, "ui task failed");
            }
            Ok(result?)
        }
        Role::Participant(user) => {
            let connect = config.connect.clone();
            run_node(
                &config,
                keypair,
                user,
                (config.listen.clone(), connect),
                Vec::new(),
                shutdown,
                notices,
            )
            .await
        }
        Role::HubAndParticipant(user) => {
            let (ev_tx, mut ev_rx) = mpsc::channel(EVENTS_CAP);
            let span = tracing::info_span!("hub", peer = %keypair.public().to_peer_id());
            let hub = net::hub::Hub::new(hub_config(keypair, config.listen.clone())?, ev_tx)?;
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let hub_task = tokio::spawn(
                hub.run(async {
                    let _ = stop_rx.await;
                })
                .instrument(span),
            );
            // The hub's address first, ready to paste; then its log goes to the diagnostics, and
            // the screen is the participant's.
            let mut hub_addr = None;
            let mut hub_listen = Vec::new();
            while let Some(event) = ev_rx.recv().await {
                if let ChatEvent::Ready { peer, listen, .. } = &event {
                    hub_addr = loopback_of(peer, listen);
                    hub_listen = listen.clone();
                    ui::print_hub_ready(json, &event);
                    break;
                }
            }
            tokio::spawn(async move {
                while let Some(event) = ev_rx.recv().await {
                    tracing::info!(target: "chitty_node::hub", ?event, "hub");
                }
            });
            let Some(hub_addr) = hub_addr else {
                // The hub stopped before it listened: its error says why.
                let _ = stop_tx.send(());
                return match hub_task.await {
                    Ok(Err(e)) => Err(e.into()),
                    _ => Err(NetError::OutputClosed.into()),
                };
            };
            let listen = vec![
                Multiaddr::empty()
                    .with(Protocol::Ip4(std::net::Ipv4Addr::UNSPECIFIED))
                    .with(Protocol::Tcp(0)),
            ];
            // The chat screen hides what was printed before it: it says the hub's addresses too.
            let banner = hub_listen
                .iter()
                .map(|a| format!("this node also runs a hub; clients --connect to {a}"))
                .collect();
            let result = run_node(
                &config,
                Keypair::generate_ed25519(),
                user,
                (listen, vec![hub_addr]),
                banner,
                shutdown,
                notices,
            )
            .await;
            let _ = stop_tx.send(());
            if let Ok(Err(e)) = hub_task.await {
                tracing::warn!(error = %e, "hub stopped with an error");
            }
            result
        }
    }
}

/// The history database of this run, if it keeps one: `None` with `--no-store`, or when the
/// default database is in use by another process (a second node of the same name on this
/// machine: it says so and runs without). Any other failure stops the node (exit code 1),
/// and so does a database in use under an explicit `--data-dir`.
fn open_store(config: &Config, hub: bool) -> Result<Option<Store>, RunError> {
    let Some(path) = config.store_path(hub) else {
        return Ok(None);
    };
    match Store::open(&path) {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::Locked { .. }) if !config.store_given => {
            tracing::warn!(
                "another chitty-node uses {} on this machine; this one keeps no history on disk",
                path.display()
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// `--export`: the room's stored history, one JSON object per line in total order, as
/// `--json` shows events (with `"stored": true`); events that no longer verify (or, in a
/// private room given by `--join`, no longer open) are left out with a warning.
fn export(config: &Config) -> Result<(), RunError> {
    use std::io::Write;
    let hub = matches!(config.role, Role::Hub | Role::HubAndParticipant(_));
    let Some(path) = config.store_path(hub) else {
        return Err(StoreError::Missing {
            path: std::path::PathBuf::from("(no data directory: give --data-dir)"),
        }
        .into());
    };
    let store = Store::open_read_only(&path)?;
    // A private room's history is stored sealed: `--join TICKET` names it and opens it.
    let private = config.private.as_ref().map(|p| &p.keys);
    let topic = private.map_or_else(|| config.room.topic(), |k| k.topic().to_owned());
    let events = store.all(&topic)?;
    if events.is_empty() {
        let rooms = store.rooms()?;
        if !rooms.contains(&topic) {
            return Err(StoreError::Other {
                path,
                why: format!(
                    "nothing is stored for room {topic}; rooms stored: {}",
                    if rooms.is_empty() {
                        "none".to_owned()
                    } else {
                        rooms.join(", ")
                    }
                ),
            }
            .into());
        }
    }
    let mut out = std::io::stdout().lock();
    let mut bad = 0usize;
    for bytes in events {
        let opened = crate::wire::decode_event(&bytes).and_then(|e| match private {
            Some(keys) => crate::wire::open_event(e, keys),
            None => Ok(e),
        });
        match opened {
            Ok(e) if e.topic == topic => {
                let mut view = e.event.view(false);
                view.stored = true;
                let lines = ui::render::render(
                    &ChatEvent::Chat(view),
                    ui::render::Format::Json,
                    chrono::Local::now(),
                );
                if writeln!(out, "{}", lines.join("\n")).is_err() {
                    // A closed pipe (`| head`): nothing more to say.
                    return Ok(());
                }
            }
            _ => bad += 1,
        }
    }
    if bad > 0 {
        tracing::warn!(bad, "stored events that do not verify were left out");
    }
    let _ = out.flush();
    Ok(())
}

/// Resolves when the node is asked to leave from outside: Ctrl-C (SIGINT), SIGTERM or SIGHUP (the
/// terminal closed). A signal that cannot be watched is left out; it then kills the process as
/// it would without us.
pub async fn shutdown_signal() {
    /// Waits for `kind`; forever if it cannot be watched.
    #[cfg(unix)]
    async fn on(kind: tokio::signal::unix::SignalKind) {
        match tokio::signal::unix::signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::debug!(error = %e, ?kind, "cannot watch the signal");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::SignalKind;
        tokio::select! {
            _ = on(SignalKind::interrupt()) => {}
            _ = on(SignalKind::terminate()) => {}
            _ = on(SignalKind::hangup()) => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A loopback address of the hub, for a participant in the same process.
fn loopback_of(peer: &str, listen: &[String]) -> Option<Multiaddr> {
    let peer: libp2p::PeerId = peer.parse().ok()?;
    listen.iter().find_map(|a| {
        let a: Multiaddr = a.parse().ok()?;
        let port = a.iter().find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })?;
        Some(
            Multiaddr::empty()
                .with(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST))
                .with(Protocol::Tcp(port))
                .with(Protocol::P2p(peer)),
        )
    })
}

/// Runs a participant that listens on and dials `(listen, connect)`. On the chat screen,
/// `banner` is shown first, as notices (in the line modes it was printed already).
async fn run_node(
    config: &Config,
    keypair: Keypair,
    user: core::event::Username,
    (listen, connect): (Vec<Multiaddr>, Vec<Multiaddr>),
    banner: Vec<String>,
    shutdown: impl Future<Output = ()>,
    notices: logging::Notices,
) -> Result<(), RunError> {
    let format = if config.json {
        ui::render::Format::Json
    } else {
        ui::render::Format::Human
    };
    let (ev_tx, ev_rx) = mpsc::channel(EVENTS_CAP);
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMANDS_CAP);
    let store = open_store(config, false)?;
    let node = net::NodeConfig {
        store,
        keypair,
        user,
        rooms: std::iter::once(net::RoomSpec {
            name: config.room.clone(),
            private: config.private.clone(),
        })
        .chain(config.more_rooms.iter().map(|name| net::RoomSpec {
            name: name.clone(),
            private: None,
        }))
        .collect(),
        listen,
        connect,
        mdns: config.mdns,
        history: config.history,
        join_grace: config.join_grace,
        max_rate: config.max_rate,
    };
    let span =
        tracing::info_span!("node", user = %node.user, peer = %node.keypair.public().to_peer_id());
    let mode = ui_mode(config);
    if mode == ui::Mode::Screen {
        for text in banner.into_iter().take(EVENTS_CAP / 2) {
            let _ = ev_tx.try_send(core::event::Update {
                room: None,
                event: ChatEvent::Notice(text),
            });
        }
    }
    let event_loop = net::EventLoop::new(node, cmd_rx, ev_tx)?;
    let ui = tokio::spawn(ui::run(format, mode, cmd_tx, ev_rx, notices));
    let result = event_loop.run(shutdown).instrument(span).await;
    // The event loop dropped its sender: the ui prints what is left and returns.
    if let Err(e) = ui.await {
        tracing::error!(error = %e, "ui task failed");
    }
    Ok(result?)
}
