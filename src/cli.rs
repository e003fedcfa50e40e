//! Command-line arguments (the doc comments are the `--help`) and their validation into a
//! [`Config`]. Every refusal here is a usage error: exit code 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use crate::core::event::{NameError, RoomName, Username};
use crate::core::room::JOIN_GRACE;
use crate::core::transcript::DEFAULT_HISTORY;

/// A serverless peer-to-peer terminal chat: ChittyChat over libp2p, ordered by Lamport clocks.
///
/// Nodes on the same LAN find each other by mDNS; elsewhere, give a peer's address with
/// --connect. Type a line to send it; /help lists the commands.
#[derive(Debug, Parser)]
#[command(name = "chitty-node", version)]
pub struct Args {
    /// Your name in the chat: 1 to 32 characters, no whitespace, control or invisible
    /// characters, no `#`. Required, except for a hub (--relay).
    #[arg(long, short = 'u', value_name = "NAME")]
    pub username: Option<String>,

    /// Run a hub instead of a participant: an always-on peer that relays and keeps the history
    /// of the rooms its clients use, for nodes mDNS cannot bring together. Listens on TCP port
    /// 4747 by default and keeps its key in a file, so its address stays the same.
    #[arg(long)]
    pub relay: bool,

    /// Keep this node's key in PATH (created, owner-only, on first use), so its peer id survives
    /// restarts. Default for a hub: DIR/relay.key; for a participant: DIR/identities/NAME.key,
    /// so a name stays the same peer (DIR is --data-dir).
    #[arg(long, value_name = "PATH")]
    pub identity: Option<PathBuf>,

    /// Keep keys and history under DIR. Default: $XDG_DATA_HOME/chitty-node (or
    /// ~/.local/share/chitty-node). History is in DIR/history/NAME.db for a participant and
    /// DIR/relay.db for a hub (SQLite).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Keep no history on disk: this run's conversation lives in memory only.
    #[arg(long)]
    pub no_store: bool,

    /// Print the stored history of the room (--room, --join TICKET for a private one, or the
    /// default room) as one JSON object per line, in order, and exit. With --username NAME,
    /// NAME's history; with --relay, the hub's.
    #[arg(long)]
    pub export: bool,

    /// Chat in room NAME (gossipsub topic chitty-chat/NAME) instead of the default room. Given
    /// again, the node is in each room (the first is where typed lines go at start). With
    /// --private, the first names the new private room.
    #[arg(long, value_name = "NAME")]
    pub room: Vec<String>,

    /// Make a new private room, end-to-end encrypted, and print an invite ticket (chitty1...)
    /// for the people you want in it: whoever holds the ticket can read and write the room.
    #[arg(long, conflicts_with_all = ["join", "relay", "export"])]
    pub private: bool,

    /// Join the private room of this invite ticket (chitty1...), as printed by whoever made the
    /// room or by /invite; its addresses are dialled like --connect ones. With --export, the
    /// room whose stored history to print.
    #[arg(long, value_name = "TICKET", conflicts_with_all = ["room", "relay"])]
    pub join: Option<String>,

    /// Listen on this multiaddr (repeatable). Default: all interfaces, a random TCP port
    /// (/ip4/0.0.0.0/tcp/0).
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,

    /// Dial this peer at start and re-dial it whenever the connection drops (repeatable):
    /// HOST:PORT (192.0.2.7:4001, [::1]:4001, host.example:4001) or a multiaddr
    /// (/ip4/192.0.2.7/tcp/4001, /dns4/host.example/tcp/4001), the /p2p/ID suffix optional.
    #[arg(long, value_name = "ADDR")]
    pub connect: Vec<String>,

    /// Do not discover peers on the LAN by mDNS.
    #[arg(long)]
    pub no_mdns: bool,

    /// Print one JSON object per line instead of human-readable lines.
    #[arg(long)]
    pub json: bool,

    /// On a terminal, print lines and read them with a line editor (the terminal's own
    /// scrollback, screen readers) instead of the full-screen chat.
    #[arg(long)]
    pub plain: bool,

    /// Live events accepted per second from any one author (bursts of twice that); the excess
    /// is dropped and not forwarded.
    #[arg(long, value_name = "N", default_value_t = crate::core::limit::DEFAULT_RATE)]
    pub max_rate: u32,

    /// How many events of a room are kept, for /history and on disk (the oldest are pruned).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_HISTORY)]
    pub history: usize,

    /// Write the full service log (joins, publishes, receives, leaves, connections) to PATH.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// More diagnostics on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// A participant (with its username) or a hub.
    pub role: Role,
    /// Where the key is kept, if anywhere.
    pub identity: Option<PathBuf>,
    /// Whether that place was given (`--identity`): then its directory must exist. (The
    /// default place's directories are created.)
    pub identity_given: bool,
    /// The data directory (`--data-dir`, or the default one if it could be worked out).
    pub data: Option<PathBuf>,
    /// `--no-store`: no history on disk.
    pub no_store: bool,
    /// Whether the data directory was given (`--data-dir`): then a database in use by another
    /// process is an error, not a reason to run without one.
    pub store_given: bool,
    /// `--export`: print the stored history and exit.
    pub export: bool,
    /// Our room (a private room's display name).
    pub room: RoomName,
    /// The public rooms we are in beside it (`--room` given again).
    pub more_rooms: Vec<RoomName>,
    /// A private room (`--private`, `--join`): its secret and keys.
    pub private: Option<crate::private::PrivateRoom>,
    /// Listen addresses (never empty).
    pub listen: Vec<Multiaddr>,
    /// Peers to keep connected to.
    pub connect: Vec<Multiaddr>,
    /// Whether mDNS runs.
    pub mdns: bool,
    /// JSON output.
    pub json: bool,
    /// Line mode on a terminal, not the full-screen chat.
    pub plain: bool,
    /// Transcript bound.
    pub history: usize,
    /// Per-author rate limit (events per second).
    pub max_rate: u32,
    /// The service log file.
    pub log_file: Option<PathBuf>,
    /// Verbosity of stderr diagnostics.
    pub verbose: u8,
    /// How long to wait for a first hello before joining alone.
    pub join_grace: Duration,
}

impl Config {
    /// The history database of the hub (`hub`) or of the participant, unless `--no-store` or
    /// no data directory.
    pub fn store_path(&self, hub: bool) -> Option<PathBuf> {
        let data = self.data.as_ref().filter(|_| !self.no_store)?;
        match (&self.role, hub) {
            (_, true) => Some(crate::store::hub_path(data)),
            (Role::Participant(u) | Role::HubAndParticipant(u), false) => {
                Some(crate::store::participant_path(data, u.as_str()))
            }
            (Role::Hub, false) => None,
        }
    }
}

/// What this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A chat participant with this username.
    Participant(Username),
    /// A hub (`--relay`).
    Hub,
    /// A hub that also chats (`--relay --username NAME`): both run in one process, the
    /// participant reaching the hub on loopback.
    HubAndParticipant(Username),
}

/// Why the arguments were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The username breaks the rules.
    #[error("invalid --username: {0}")]
    Username(NameError),
    /// The room name breaks the rules.
    #[error("invalid --room: {0}")]
    Room(NameError),
    /// A participant needs a name.
    #[error("--username is required (unless you run a hub with --relay)")]
    NoUsername,
    /// A hub serves the rooms its clients name and dials nobody.
    #[error(
        "--relay serves every room its clients use and dials nobody: --connect does not apply, nor --room without --username"
    )]
    HubOptions,
    /// More `--room`s than one node is in at once.
    #[error("--room: at most {} rooms at once", crate::net::MAX_JOINED)]
    TooManyRooms,
    /// The default identity location could not be worked out.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// `--max-rate 0` would drop everything.
    #[error("--max-rate must be at least 1")]
    Rate,
    /// `--export` reads the store that `--no-store` turns off.
    #[error("--export prints the stored history: it cannot go with --no-store")]
    ExportNoStore,
    /// `--history 0` would keep nothing.
    #[error("--history must be at least 1")]
    History,
    /// `--join` was given something that is not a ticket.
    #[error("--join: {0}")]
    Ticket(#[from] crate::private::ticket::TicketError),
    /// A `--connect` address names no transport we can dial.
    #[error(
        "--connect {0}: expected HOST:PORT (192.0.2.7:4001, [::1]:4001, host.example:4001) or a multiaddr (/ip4/192.0.2.7/tcp/4001, /dns4/host.example/tcp/4001), optionally followed by /p2p/ID"
    )]
    Connect(String),
}

/// Whether we can dial `addr`: an IP address or a host name, a TCP port, optionally the peer
/// id.
fn dialable(addr: &Multiaddr) -> bool {
    let mut parts = addr.iter();
    matches!(
        parts.next(),
        Some(
            Protocol::Ip4(_)
                | Protocol::Ip6(_)
                | Protocol::Dns(_)
                | Protocol::Dns4(_)
                | Protocol::Dns6(_)
        )
    ) && matches!(parts.next(), Some(Protocol::Tcp(_)))
        && matches!(parts.next(), None | Some(Protocol::P2p(_)))
        && parts.next().is_none()
}

/// Reads a `--connect` address: a multiaddr, or `HOST:PORT` as most programs take it.
pub fn parse_connect(s: &str) -> Result<Multiaddr, ConfigError> {
    let bad = || ConfigError::Connect(s.to_owned());
    let addr = if s.starts_with('/') {
        s.parse::<Multiaddr>().map_err(|_| bad())?
    } else if let Ok(socket) = s.parse::<std::net::SocketAddr>() {
        Multiaddr::from(socket.ip()).with(Protocol::Tcp(socket.port()))
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !name_ok {
            return Err(bad());
        }
        Multiaddr::empty()
            .with(Protocol::Dns(host.to_owned().into()))
            .with(Protocol::Tcp(port))
    };
    if dialable(&addr) {
        Ok(addr)
    } else {
        Err(bad())
    }
}

impl TryFrom<Args> for Config {
    type Error = ConfigError;

    fn try_from(a: Args) -> Result<Self, ConfigError> {
        let role = match (a.relay, a.username) {
            (false, None) => return Err(ConfigError::NoUsername),
            (true, _) if !a.connect.is_empty() => return Err(ConfigError::HubOptions),
            (true, None) if !a.room.is_empty() => return Err(ConfigError::HubOptions),
            (true, Some(u)) => {
                Role::HubAndParticipant(Username::new(u).map_err(ConfigError::Username)?)
            }
            (false, Some(u)) => Role::Participant(Username::new(u).map_err(ConfigError::Username)?),
            (true, None) => Role::Hub,
        };
        let identity_given = a.identity.is_some();
        let store_given = a.data_dir.is_some();
        // Without a home directory and without --data-dir, a participant runs with a new key
        // and no store; a hub needs one.
        let data = match a.data_dir {
            Some(d) => Some(d),
            None => crate::identity::data_dir().ok(),
        };
        let identity = match (&role, a.identity, &data) {
            (_, Some(p), _) => Some(p),
            (Role::Hub | Role::HubAndParticipant(_), None, Some(d)) => {
                Some(crate::identity::default_relay_path(d))
            }
            (Role::Hub | Role::HubAndParticipant(_), None, None) => {
                return Err(crate::identity::IdentityError::NoHome.into());
            }
            // A participant's key follows its name.
            (Role::Participant(u), None, Some(d)) => {
                Some(crate::identity::default_user_path(d, u.as_str()))
            }
            (Role::Participant(_), None, None) => None,
        };
        if a.export && a.no_store {
            return Err(ConfigError::ExportNoStore);
        }

        let mut rooms = a
            .room
            .into_iter()
            .map(|r| RoomName::new(r).map_err(ConfigError::Room))
            .collect::<Result<Vec<_>, _>>()?;
        rooms.dedup();
        let (mut room, more_rooms) = if rooms.is_empty() {
            (RoomName::lobby(), Vec::new())
        } else {
            let first = rooms.remove(0);
            (first, rooms)
        };
        if more_rooms.len() + 1 > crate::net::MAX_JOINED {
            return Err(ConfigError::TooManyRooms);
        }
        let mut ticket_addrs = Vec::new();
        let private = if a.private {
            Some(crate::private::PrivateRoom::make())
        } else if let Some(t) = &a.join {
            let ticket = crate::private::ticket::Ticket::decode(t)?;
            if let Some(name) = ticket.name {
                room = name;
            }
            // Relayed addresses are reached through the hub's, which a ticket carries too.
            ticket_addrs = ticket.addrs.into_iter().filter(dialable).collect();
            Some(crate::private::PrivateRoom::join(ticket.secret))
        } else {
            None
        };
        if a.history == 0 {
            return Err(ConfigError::History);
        }
        if a.max_rate == 0 {
            return Err(ConfigError::Rate);
        }
        let mut connect = a
            .connect
            .iter()
            .map(|c| parse_connect(c))
            .collect::<Result<Vec<_>, _>>()?;
        for addr in ticket_addrs {
            if !connect.contains(&addr) {
                connect.push(addr);
            }
        }
        let port = match role {
            Role::Hub | Role::HubAndParticipant(_) => crate::net::hub::DEFAULT_HUB_PORT,
            Role::Participant(_) => 0,
        };
        let listen = if a.listen.is_empty() {
            vec![
                Multiaddr::empty()
                    .with(Protocol::Ip4(std::net::Ipv4Addr::UNSPECIFIED))
                    .with(Protocol::Tcp(port)),
            ]
        } else {
            a.listen
        };
        Ok(Config {
            role,
            identity,
            identity_given,
            data,
            no_store: a.no_store,
            store_given,
            export: a.export,
            room,
            more_rooms,
            private,
            listen,
            connect,
            mdns: !a.no_mdns,
            json: a.json,
            plain: a.plain,
            history: a.history,
            max_rate: a.max_rate,
            log_file: a.log_file,
            verbose: a.verbose,
            join_grace: JOIN_GRACE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let a = Args::try_parse_from(std::iter::once("chitty-node").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::try_from(a).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse(&["--username", "client1"]).unwrap();
        assert!(c.mdns);
        assert!(!c.json);
        assert_eq!(c.listen[0].to_string(), "/ip4/0.0.0.0/tcp/0");
        assert_eq!(c.room.topic(), "chitty-chat");
    }

    /// `--connect` takes what people type first (`127.0.0.1:4747`, `localhost:4747`) as well as
    /// multiaddrs.
    #[test]
    fn connect_takes_host_and_port_or_a_multiaddr() {
        let one = |a: &str| {
            parse_connect(a)
                .map(|m| m.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(one("127.0.0.1:4747").unwrap(), "/ip4/127.0.0.1/tcp/4747");
        assert_eq!(one("[::1]:4747").unwrap(), "/ip6/::1/tcp/4747");
        assert_eq!(one("localhost:4747").unwrap(), "/dns/localhost/tcp/4747");
        assert_eq!(
            one("/dns4/hub.example/tcp/4747").unwrap(),
            "/dns4/hub.example/tcp/4747"
        );
        let e = one("127.0.0.1").unwrap_err();
        assert!(
            e.contains("expected HOST:PORT") && e.contains("/ip4/192.0.2.7/tcp/4001"),
            "{e}"
        );
    }

    #[test]
    fn refusals_name_the_flag() {
        assert!(parse(&[]).unwrap_err().contains("--username is required"));
        assert!(matches!(
            parse(&["--relay", "--username", "a", "--identity", "/tmp/x.key"])
                .unwrap()
                .role,
            Role::HubAndParticipant(_)
        ));
        assert!(
            parse(&["--relay", "--room", "x"])
                .unwrap_err()
                .contains("does not apply")
        );
        assert!(
            parse(&["--relay", "--connect", "/ip4/1.2.3.4/tcp/1"])
                .unwrap_err()
                .contains("does not apply")
        );
        let hub = parse(&["--relay", "--identity", "/tmp/x.key"]).unwrap();
        assert_eq!(hub.role, Role::Hub);
        assert_eq!(hub.listen[0].to_string(), "/ip4/0.0.0.0/tcp/4747");
        assert!(
            parse(&["--username", "a b"])
                .unwrap_err()
                .contains("invalid --username: username contains whitespace")
        );
        assert!(
            parse(&["--username", &"x".repeat(33)])
                .unwrap_err()
                .contains("33 characters; the limit is 32")
        );
        assert!(
            parse(&["--username", "a", "--room", ""])
                .unwrap_err()
                .contains("--room")
        );
        assert!(
            parse(&["--username", "a", "--connect", "/ip4/1.2.3.4"])
                .unwrap_err()
                .contains("--connect")
        );
        assert!(parse(&["--username", "a", "--connect", "nonsense"]).is_err());
        assert!(parse(&["--username", "a", "--connect", "/ip4/1.2.3.4/udp/1"]).is_err());
        assert!(parse(&["--username", "a", "--connect", "host:"]).is_err());
        assert!(parse(&["--username", "a", "--connect", "a b:1"]).is_err());
        assert!(parse(&["--username", "a", "--connect", "4747"]).is_err());
        assert!(parse(&["--username", "a", "--connect", "/ip4/1.2.3.4/tcp/1/ws"]).is_err());
        assert!(parse(&["--username", "a", "--connect", "/ip6/::1/tcp/1"]).is_ok());
        assert!(parse(&["--username", "a", "--history", "0"]).is_err());
    }
}
