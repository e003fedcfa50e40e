//! Renderers: the same [`ChatEvent`] stream as human lines or as NDJSON (README.md, "Output").
//!
//! A line about a chat event (live, caught up, or in `/history`) is stamped with the time its
//! author said it, as the event carries it; any other line with the time it is printed.

use chrono::{DateTime, Local, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::core::event::{
    ChatEvent, DialFailure, DialOutcome, EventKind, EventView, LeaveReason, LinkView,
};
use crate::core::status::{PublishFailure, Status};
use crate::core::time::WallTime;

use super::input::HELP;

/// How output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines for people, prefixed with the local date and time as Go's log package prints it:
    /// for a chat event, the time its author said it; for anything else, the time it is printed.
    Human,
    /// One JSON object per line.
    Json,
    /// The hub's server log, as the original Chitty-Chat server printed it (chat events stamped
    /// as in [`Format::Human`]).
    HubLog,
}

/// Go's log package's date and time.
const STAMP: &str = "%Y/%m/%d %H:%M:%S";
/// How long a stamp is (`2026/11/25 14:29:31`; years have four digits up to 9999).
const STAMP_LEN: usize = 19;

/// `t` in UTC; `None` when chrono cannot represent it. ([`WallTime`] keeps to years up to 9999,
/// which it can; whatever a peer sends, the renderer does not panic.)
fn utc(t: WallTime) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(t.unix_millis()).ok()?)
}

/// `t` as RFC 3339, in UTC, to the millisecond (`2026-11-25T13:30:08.123Z`).
fn rfc3339(t: WallTime) -> Option<String> {
    utc(t).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A human line and the time to stamp it with: an event's own, or `None` for the time it is
/// printed.
type Line = (Option<WallTime>, String);

fn now_line(text: String) -> Line {
    (None, text)
}

/// The last characters of a base58 peer id: enough to tell peers apart at a glance (every
/// ed25519 peer id starts with the same `12D3KooW`).
pub fn short_id(peer: &str) -> &str {
    // Eight base58 characters: about 47 bits, too many to grind a look-alike key for.
    let start = peer.len().saturating_sub(8);
    peer.get(start..).unwrap_or(peer)
}

fn human_event(v: &EventView) -> String {
    format!("{}{}", human_line(v), event_suffix(v))
}

/// The name to show: with a peer id suffix when another participant uses the same one.
fn display(v: &EventView) -> String {
    if v.ambiguous {
        format!("{}#{}", v.user, short_id(&v.peer))
    } else {
        v.user.clone()
    }
}

fn human_line(v: &EventView) -> String {
    match event_parts(v) {
        (Some(user), text) => format!("[{}] {user}: {text}", v.lamport),
        (None, text) => format!("[{}] System: {text}", v.lamport),
    }
}

/// What a chat event says, for a screen that lays its parts out itself: who said it (`None` for
/// a line the system words: joins, leaves, sealed events) and the text, in the words of the line
/// renderer.
pub fn event_parts(v: &EventView) -> (Option<String>, String) {
    let user = display(v);
    match v.kind {
        EventKind::Join => (
            None,
            format!(
                "Participant {user} joined Chitty-Chat at Lamport time {}",
                v.lamport
            ),
        ),
        EventKind::Leave => (
            None,
            format!(
                "Participant {user} left Chitty-Chat at Lamport time {}",
                v.lamport
            ),
        ),
        EventKind::Message => (Some(user), v.text.clone().unwrap_or_default()),
        EventKind::Sealed => (
            None,
            format!("a sealed event of a private room by {}", v.peer),
        ),
    }
}

/// What a chat line adds after its text: a leave by loss, history caught up or stored.
pub fn event_suffix(v: &EventView) -> &'static str {
    match (v.reason == Some(LeaveReason::Lost), v.stored, v.sync) {
        (true, true, _) => " (connection lost) (earlier)",
        (true, false, true) => " (connection lost) (caught up)",
        (true, false, false) => " (connection lost)",
        (false, true, _) => " (earlier)",
        (false, false, true) => " (caught up)",
        (false, false, false) => "",
    }
}

/// The lines the human renderer shows for `event`, each with the time to stamp it with
/// (`None`: the time it is shown), without the stamp.
pub fn human_lines(event: &ChatEvent) -> Vec<(Option<WallTime>, String)> {
    render_human(event)
}

fn json_event(v: &EventView, ty: &str) -> Value {
    let mut o = json!({
        "type": ty,
        "lamport": v.lamport,
        "user": v.user,
        "peer": v.peer,
    });
    if ty == "history" {
        o["event"] = json!(v.kind.as_str());
    }
    if let Some(t) = rfc3339(v.time) {
        o["time"] = json!(t);
    }
    if let Some(t) = &v.text {
        o["text"] = json!(t);
    }
    if let Some(r) = v.reason {
        o["reason"] = json!(r.as_str());
    }
    if let Some(by) = &v.by {
        o["by"] = json!(by);
    }
    if v.ambiguous {
        o["display"] = json!(display(v));
    }
    if v.sync && ty != "history" {
        o["sync"] = json!(true);
    }
    if v.stored {
        o["stored"] = json!(true);
    }
    o
}

/// Renders `event` as output lines (without line endings). In human mode, each line is stamped
/// with the time of the event it shows, or with `now`.
pub fn render(event: &ChatEvent, format: Format, now: DateTime<Local>) -> Vec<String> {
    match format {
        Format::Json => render_json(event).iter().map(Value::to_string).collect(),
        Format::Human | Format::HubLog => {
            let lines = if format == Format::HubLog {
                render_hub(event)
            } else {
                render_human(event)
            };
            lines
                .into_iter()
                .map(|(at, l)| {
                    let at = at.and_then(utc).map_or(now, |t| t.with_timezone(&Local));
                    format!("{} {l}", at.format(STAMP))
                })
                .collect()
        }
    }
}

fn render_hub(event: &ChatEvent) -> Vec<Line> {
    match event {
        ChatEvent::Ready { peer, listen, .. } => {
            let mut lines = vec![now_line(format!(
                "chitty-node hub {peer} is up; clients connect with:"
            ))];
            lines.extend(listen.iter().map(|a| now_line(format!("  --connect {a}"))));
            lines
        }
        ChatEvent::Chat(v) => {
            let caught_up = if v.sync { " (caught up)" } else { "" };
            let said = |text: String| (Some(v.time), text);
            match v.kind {
                EventKind::Join => {
                    vec![said(format!("{} enter the chat system{caught_up}", v.user))]
                }
                EventKind::Leave => {
                    let lost = if v.reason == Some(LeaveReason::Lost) {
                        " (connection lost)"
                    } else {
                        ""
                    };
                    vec![said(format!(
                        "{} leave the chat system{lost}{caught_up}",
                        v.user
                    ))]
                }
                EventKind::Sealed => vec![said(format!(
                    "[{}] a sealed event of a private room by {}",
                    v.lamport, v.peer
                ))],
                EventKind::Message => {
                    let line = said(format!(
                        "[{}] {}: {}{caught_up}",
                        v.lamport,
                        v.user,
                        v.text.as_deref().unwrap_or_default()
                    ));
                    if v.sync {
                        // Learned from history, not relayed now.
                        vec![line]
                    } else {
                        vec![
                            line,
                            now_line("The message has been broadcasted".to_owned()),
                        ]
                    }
                }
            }
        }
        ChatEvent::Peer {
            peer,
            connected: true,
            addr,
        } => vec![now_line(format!("connection from {peer} at {addr}"))],
        ChatEvent::Peer { peer, .. } => vec![now_line(format!("connection with {peer} closed"))],
        ChatEvent::Room { topic } => vec![now_line(format!("serving room {topic}"))],
        ChatEvent::Stopped => vec![now_line("chitty-node hub stopped".to_owned())],
        ChatEvent::Notice(t) => vec![now_line(t.clone())],
        ChatEvent::Status(st) if !st.is_error() => vec![now_line(status_text(st))],
        other => render_human(other),
    }
}

fn render_human(event: &ChatEvent) -> Vec<Line> {
    let lines = match event {
        ChatEvent::Ready {
            peer,
            user,
            topic,
            listen,
        } => {
            let room = if crate::private::is_private_topic(topic) {
                "a private room".to_owned()
            } else {
                format!("room {topic}")
            };
            let mut lines = vec![format!(
                "System: {user} is peer {peer} in {room}; others can --connect to:"
            )];
            lines.extend(listen.iter().map(|a| format!("System:   {a}")));
            lines
        }
        ChatEvent::Chat(v) => return vec![(Some(v.time), human_event(v))],
        ChatEvent::Who(list) => {
            let names: Vec<String> = list
                .iter()
                .map(|p| {
                    format!(
                        "{}#{}{}",
                        p.user,
                        short_id(&p.peer),
                        if p.me { " (you)" } else { "" }
                    )
                })
                .collect();
            vec![format!(
                "System: {} in the room: {}",
                list.len(),
                names.join(", ")
            )]
        }
        ChatEvent::Search { query, found } => {
            let head = if found.is_empty() {
                format!("System: no stored message matches \"{query}\"")
            } else {
                format!(
                    "System: {} stored message(s) match \"{query}\", newest first:",
                    found.len()
                )
            };
            let mut lines = vec![now_line(head)];
            lines.extend(
                found
                    .iter()
                    .map(|v| (Some(v.time), format!("  {}", human_event(v)))),
            );
            return lines;
        }
        ChatEvent::History(events) => {
            let mut lines = vec![now_line(format!(
                "System: history, {} event(s) in Lamport order:",
                events.len()
            ))];
            lines.extend(
                events
                    .iter()
                    .map(|v| (Some(v.time), format!("  {}", human_event(v)))),
            );
            return lines;
        }
        ChatEvent::Notice(t) => vec![format!("System: {t}")],
        ChatEvent::Error(t) => vec![format!("Error: {t}")],
        ChatEvent::Status(st) if st.is_error() => vec![format!("Error: {}", status_text(st))],
        ChatEvent::Status(st) => vec![format!("System: {}", status_text(st))],
        // Connections are for scripts (--json) and the log file, not the chat screen.
        ChatEvent::Peer { .. } => Vec::new(),
        ChatEvent::Room { topic } => vec![format!("System: room {topic}")],
        ChatEvent::Stopped => vec!["System: stopped".to_owned()],
        ChatEvent::Dial {
            addr,
            outcome: DialOutcome::Failed(why),
        } => vec![if *why == DialFailure::OwnAddress {
            format!(
                "System: not dialling --connect {addr}: {}",
                dial_failure(why)
            )
        } else {
            format!(
                "System: cannot reach --connect {addr}: {}; retrying with backoff (every 10 s at most)",
                dial_failure(why)
            )
        }],
        ChatEvent::Dial {
            addr,
            outcome: DialOutcome::Connected { peer },
        } => vec![format!(
            "System: connected to --connect {addr} (peer {peer})"
        )],
        ChatEvent::Links(links) => {
            let hub = links.iter().find(|l| l.hub).map_or_else(
                || "no hub".to_owned(),
                |h| format!("hub {} reached", h.peer),
            );
            let mut lines = vec![format!(
                "System: connected to {} peer(s); {hub}",
                links.len()
            )];
            lines.extend(links.iter().map(|l| format!("System:   {}", link_line(l))));
            lines
        }
        ChatEvent::Opened(v) => vec![format!(
            "System: in {} now: lines you type go there (/part leaves it, /rooms lists yours)",
            room_label(&v.topic, v.name.as_deref()),
        )],
        ChatEvent::Closed { topic } => {
            vec![format!("System: left {}", room_label(topic, None))]
        }
        ChatEvent::Rooms(rooms) => {
            let mut lines = vec![format!("System: in {} room(s):", rooms.len())];
            lines.extend(rooms.iter().map(|r| {
                format!(
                    "System:   {} ({} present)",
                    room_label(&r.topic, r.name.as_deref()),
                    r.present
                )
            }));
            lines
        }
        ChatEvent::Ticket(ticket) => vec![
            "System: invite others to this private room with this ticket (chitty-node --username NAME --join TICKET).".to_owned(),
            "System: whoever holds it can read and write the room: share it only with them, privately.".to_owned(),
            format!("System:   {ticket}"),
        ],
        ChatEvent::Addresses { peer, listen } => {
            let mut lines = vec![format!(
                "System: you are peer {peer}; others can --connect to:"
            )];
            lines.extend(listen.iter().map(|a| format!("System:   {a}")));
            lines
        }
        ChatEvent::Dropped {
            user,
            peer,
            missing,
            rate,
        } => vec![format!(
            "System: {missing} message(s) from {user}#{} never arrived: it sent more than {rate} a second and the excess was dropped; they come later only if it, or someone who has them, is still reachable",
            short_id(peer)
        )],
    };
    lines.into_iter().map(now_line).collect()
}

/// A user's words for a status report of the core or the network layer.
fn status_text(st: &Status) -> String {
    match st {
        Status::Queued { from } => format!(
            "no one else is in the room yet: your messages (from [{from}]) are queued and go out when someone joins"
        ),
        Status::QueuedSent { count } => format!("{count} queued message(s) sent"),
        Status::NeverDelivered { count } => {
            format!("{count} queued message(s) were never delivered: no one else was in the room")
        }
        Status::OutboxFull { cap } => {
            format!("not sent: {cap} messages are already waiting for someone to join")
        }
        Status::EventNotSent { lamport } => {
            format!("the event stamped {lamport} was not sent: too many events are waiting")
        }
        Status::PublishFailed { lamport, why } => {
            let why = match why {
                PublishFailure::Duplicate => "it was already sent",
                PublishFailure::Signing => "it could not be signed",
                PublishFailure::TooLarge => "it is too large for the network",
                PublishFailure::Encoding => "it could not be encoded",
                PublishFailure::NoPeers => "no one else is in the room",
                PublishFailure::QueuesFull => "every peer's send queue is full",
            };
            format!("could not send the event stamped {lamport}: {why}")
        }
        Status::CutOff { peer } => format!(
            "cut off peer {} for sending invalid messages",
            short_id(peer)
        ),
        Status::TooManyPending => {
            "too many lines typed before joining; this one was not sent".to_owned()
        }
        Status::HaveLeft => "you have left the room".to_owned(),
        Status::Registered { peer, room, ttl } => {
            format!("{peer} registered in room {room} for {ttl} s")
        }
        Status::Unregistered { peer, room } => format!("{peer} unregistered from room {room}"),
        Status::RegistrationExpired { peer, room } => {
            format!("registration of {peer} in room {room} expired")
        }
        Status::RelaySlot { peer } => format!("{peer} reserved a relay slot"),
        Status::Relaying { from, to } => format!("relaying {from} to {to}"),
    }
}

/// A user's words for why a dial failed.
fn dial_failure(why: &DialFailure) -> String {
    match why {
        DialFailure::Refused => {
            "connection refused: nothing listens on that port (is the peer running? is the port right?)".to_owned()
        }
        DialFailure::TimedOut => {
            "no answer in time (a firewall, a host that is down, or a wrong address)".to_owned()
        }
        DialFailure::Unreachable => "no route to that host or network".to_owned(),
        DialFailure::NoSuchHost => "no such host: the name does not resolve".to_owned(),
        DialFailure::WrongPeer { found } => format!(
            "a different peer answers there ({found}): the /p2p/ID in the address is not its peer id"
        ),
        DialFailure::OwnAddress => "that is this node's own address".to_owned(),
        DialFailure::Other(e) => e.clone(),
    }
}

/// The short word for why a dial failed, for scripts.
fn dial_failure_kind(why: &DialFailure) -> &'static str {
    match why {
        DialFailure::Refused => "refused",
        DialFailure::TimedOut => "timeout",
        DialFailure::Unreachable => "unreachable",
        DialFailure::NoSuchHost => "no_such_host",
        DialFailure::WrongPeer { .. } => "wrong_peer",
        DialFailure::OwnAddress => "own_address",
        DialFailure::Other(_) => "other",
    }
}

/// How a room is named for people: `#name` (the default room `chitty-chat`), or a private
/// room's name (or `a private room`).
pub fn room_label(topic: &str, name: Option<&str>) -> String {
    if crate::private::is_private_topic(topic) {
        return match name {
            Some(n) => format!("private room {n}"),
            None => "a private room".to_owned(),
        };
    }
    match topic
        .strip_prefix(crate::core::event::BASE_TOPIC)
        .and_then(|r| r.strip_prefix('/'))
    {
        Some(name) => format!("#{name}"),
        None => topic.to_owned(),
    }
}

/// Renders an update: as [`render`], and when the node is in more than one room (`multi`),
/// with the room a room's event is about: `#room` after the stamp of a human line, a `room`
/// field (its topic) in JSON.
pub fn render_update(
    update: &crate::core::event::Update,
    format: Format,
    now: DateTime<Local>,
    multi: bool,
) -> Vec<String> {
    let room = update.room.as_deref().filter(|_| multi);
    match (format, room) {
        (Format::Json, Some(topic)) => render_json(&update.event)
            .into_iter()
            .map(|mut v| {
                if let Some(o) = v.as_object_mut()
                    && !o.contains_key("room")
                {
                    o.insert("room".to_owned(), json!(topic));
                }
                v.to_string()
            })
            .collect(),
        (Format::Human | Format::HubLog, Some(topic)) => {
            let label = room_label(topic, None);
            render(&update.event, format, now)
                .into_iter()
                .map(|l| match l.split_at_checked(STAMP_LEN) {
                    Some((stamp, rest)) => format!("{stamp} {label}{rest}"),
                    None => l,
                })
                .collect()
        }
        _ => render(&update.event, format, now),
    }
}

fn link_line(l: &LinkView) -> String {
    let who = match (&l.user, l.hub) {
        (_, true) => format!("hub {}", l.peer),
        (Some(user), false) => format!("{user}#{} ({})", short_id(&l.peer), l.peer),
        (None, false) => l.peer.clone(),
    };
    format!("{who} at {}", l.addr)
}

fn render_json(event: &ChatEvent) -> Vec<Value> {
    match event {
        ChatEvent::Ready {
            peer,
            user,
            topic,
            listen,
        } => {
            let mut o = json!({"type": "ready", "peer": peer});
            // A hub has neither a username nor a room of its own.
            if !user.is_empty() {
                o["user"] = json!(user);
                o["topic"] = json!(topic);
                o["private"] = json!(crate::private::is_private_topic(topic));
            }
            o["listen"] = json!(listen);
            vec![o]
        }
        ChatEvent::Chat(v) => vec![json_event(v, v.kind.as_str())],
        ChatEvent::Who(list) => vec![json!({
            "type": "who",
            "participants": list
                .iter()
                .map(|p| json!({"user": p.user, "peer": p.peer, "me": p.me}))
                .collect::<Vec<_>>(),
        })],
        ChatEvent::History(events) => {
            let mut out: Vec<Value> = events.iter().map(|v| json_event(v, "history")).collect();
            out.push(json!({"type": "history_end", "count": events.len()}));
            out
        }
        ChatEvent::Search { query, found } => {
            let mut out: Vec<Value> = found
                .iter()
                .map(|v| {
                    let mut o = json_event(v, "search");
                    o["query"] = json!(query);
                    o
                })
                .collect();
            out.push(json!({"type": "search_end", "query": query, "count": found.len()}));
            out
        }
        ChatEvent::Notice(t) => vec![json!({"type": "notice", "text": t})],
        ChatEvent::Error(t) => vec![json!({"type": "error", "message": t})],
        ChatEvent::Status(st) if st.is_error() => vec![json!({
            "type": "error",
            "kind": st.kind(),
            "message": status_text(st),
        })],
        ChatEvent::Status(st) => vec![json!({
            "type": "notice",
            "kind": st.kind(),
            "text": status_text(st),
        })],
        ChatEvent::Peer {
            peer,
            connected,
            addr,
        } => vec![json!({"type": "peer", "peer": peer, "connected": connected, "addr": addr})],
        ChatEvent::Room { topic } => vec![json!({"type": "room", "topic": topic})],
        ChatEvent::Stopped => vec![json!({"type": "stopped"})],
        ChatEvent::Dial {
            addr,
            outcome: DialOutcome::Failed(why),
        } => vec![json!({
            "type": "dial",
            "addr": addr,
            "ok": false,
            "error": dial_failure_kind(why),
            "message": dial_failure(why),
        })],
        ChatEvent::Dial {
            addr,
            outcome: DialOutcome::Connected { peer },
        } => vec![json!({"type": "dial", "addr": addr, "ok": true, "peer": peer})],
        ChatEvent::Links(links) => vec![json!({
            "type": "peers",
            "hub": links.iter().any(|l| l.hub),
            "peers": links
                .iter()
                .map(|l| json!({"peer": l.peer, "user": l.user, "addr": l.addr, "hub": l.hub}))
                .collect::<Vec<_>>(),
        })],
        ChatEvent::Addresses { peer, listen } => {
            vec![json!({"type": "addresses", "peer": peer, "listen": listen})]
        }
        ChatEvent::Ticket(ticket) => vec![json!({"type": "ticket", "ticket": ticket})],
        ChatEvent::Opened(v) => vec![json!({
            "type": "opened",
            "room": v.topic,
            "name": v.name,
            "private": v.private,
            "present": v.present,
        })],
        ChatEvent::Closed { topic } => vec![json!({"type": "closed", "room": topic})],
        ChatEvent::Rooms(rooms) => vec![json!({
            "type": "rooms",
            "rooms": rooms.iter().map(|r| json!({
                "room": r.topic,
                "name": r.name,
                "private": r.private,
                "present": r.present,
            })).collect::<Vec<_>>(),
        })],
        ChatEvent::Dropped {
            user,
            peer,
            missing,
            rate,
        } => vec![json!({
            "type": "dropped",
            "user": user,
            "peer": peer,
            "missing": missing,
            "rate": rate,
        })],
    }
}

/// The `/help` text.
pub fn help(format: Format, now: DateTime<Local>) -> Vec<String> {
    match format {
        Format::Json => vec![
            json!({
                "type": "help",
                "commands": HELP.iter().map(|(c, d)| json!({"command": c, "description": d})).collect::<Vec<_>>(),
            })
            .to_string(),
        ],
        Format::Human | Format::HubLog => {
            let mut lines = vec!["System: type a line to send it; commands:".to_owned()];
            lines.extend(HELP.iter().map(|(c, d)| format!("System:   {c:<13} {d}")));
            let stamp = now.format(STAMP);
            lines.into_iter().map(|l| format!("{stamp} {l}")).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 11, 25, 14, 29, 31).unwrap()
    }

    /// `t` as an event's time.
    fn wall(t: DateTime<Local>) -> WallTime {
        WallTime::from_unix_millis(u64::try_from(t.timestamp_millis()).unwrap()).unwrap()
    }

    /// An event said at `at()`.
    fn view(kind: EventKind, lamport: u64) -> EventView {
        EventView {
            kind,
            lamport,
            time: wall(at()),
            user: "client1".into(),
            peer: "12D3KooWabcdef".into(),
            text: (kind == EventKind::Message).then(|| "hello".into()),
            reason: (kind == EventKind::Leave).then_some(LeaveReason::Quit),
            by: None,
            sync: false,
            stored: false,
            ambiguous: false,
        }
    }

    #[test]
    fn human_lines_match_the_assignment() {
        let r = |k, l| render(&ChatEvent::Chat(view(k, l)), Format::Human, at());
        assert_eq!(
            r(EventKind::Join, 2),
            vec![
                "2026/11/25 14:29:31 [2] System: Participant client1 joined Chitty-Chat at Lamport time 2"
            ]
        );
        assert_eq!(
            r(EventKind::Message, 5),
            vec!["2026/11/25 14:29:31 [5] client1: hello"]
        );
        assert_eq!(
            r(EventKind::Leave, 6),
            vec![
                "2026/11/25 14:29:31 [6] System: Participant client1 left Chitty-Chat at Lamport time 6"
            ]
        );
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = &render(
            &ChatEvent::Chat(view(EventKind::Leave, 6)),
            Format::Json,
            at(),
        )[0];
        let v: Value = serde_json::from_str(line).unwrap();
        let time = at()
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        assert_eq!(
            v,
            json!({"type":"leave","lamport":6,"time":time,"user":"client1","peer":"12D3KooWabcdef","reason":"quit"})
        );
        let hist = render(
            &ChatEvent::History(vec![view(EventKind::Message, 5)]),
            Format::Json,
            at(),
        );
        assert_eq!(hist.len(), 2);
        let h: Value = serde_json::from_str(&hist[0]).unwrap();
        assert_eq!(h["type"], "history");
        assert_eq!(h["event"], "message");
        assert_eq!(h["text"], "hello");
        assert_eq!(h["time"], time.as_str());
        assert_eq!(hist[1], r#"{"type":"history_end","count":1}"#);
    }

    /// A backlog shows when each line was said, not when it was printed: caught-up lines and
    /// `/history` entries are stamped with their events' own times.
    #[test]
    fn backlog_lines_show_the_times_they_were_said() {
        let said: Vec<DateTime<Local>> = (0..3)
            .map(|i| at() - chrono::Duration::minutes(90 - 7 * i))
            .collect();
        let backlog: Vec<EventView> = said
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut v = view(EventKind::Message, 3 + i as u64);
                v.time = wall(*t);
                v.sync = true;
                v
            })
            .collect();
        for (v, t) in backlog.iter().zip(&said) {
            let line = &render(&ChatEvent::Chat(v.clone()), Format::Human, at())[0];
            let want = format!(
                "{} [{}] client1: hello (caught up)",
                t.format(STAMP),
                v.lamport
            );
            assert_eq!(line, &want);
        }
        let hist = render(&ChatEvent::History(backlog), Format::Human, at());
        assert_eq!(
            hist[0],
            "2026/11/25 14:29:31 System: history, 3 event(s) in Lamport order:"
        );
        for (line, t) in hist[1..].iter().zip(&said) {
            assert!(
                line.starts_with(&format!("{}   [", t.format(STAMP))),
                "{line}"
            );
        }
        assert_eq!(hist.len(), 4);
    }

    /// JSON times are RFC 3339 in UTC, to the millisecond; the latest time an event may carry
    /// renders too, in every format.
    #[test]
    fn json_times_are_rfc3339_utc() {
        let mut v = view(EventKind::Message, 5);
        v.time = WallTime::from_unix_millis(1_795_613_408_123).unwrap();
        let j: Value =
            serde_json::from_str(&render(&ChatEvent::Chat(v.clone()), Format::Json, at())[0])
                .unwrap();
        assert_eq!(j["time"], "2026-11-25T13:30:08.123Z");
        v.time = WallTime::MAX;
        let j: Value = serde_json::from_str(
            &render(&ChatEvent::History(vec![v.clone()]), Format::Json, at())[0],
        )
        .unwrap();
        assert_eq!(j["time"], "9999-12-31T23:59:59.999Z");
        for format in [Format::Human, Format::HubLog] {
            let line = &render(&ChatEvent::Chat(v.clone()), format, at())[0];
            assert!(line.contains("[5] client1: hello"), "{line}");
        }
    }

    #[test]
    fn caught_up_and_lost_events_are_marked() {
        let mut v = view(EventKind::Leave, 6);
        v.reason = Some(LeaveReason::Lost);
        v.by = Some("12D3KooWother".into());
        v.sync = true;
        let human = render(&ChatEvent::Chat(v.clone()), Format::Human, at());
        assert_eq!(
            human,
            vec![
                "2026/11/25 14:29:31 [6] System: Participant client1 left Chitty-Chat at Lamport time 6 (connection lost) (caught up)"
            ]
        );
        let j: Value =
            serde_json::from_str(&render(&ChatEvent::Chat(v), Format::Json, at())[0]).unwrap();
        assert_eq!(
            (j["reason"].as_str(), j["by"].as_str(), j["sync"].as_bool()),
            (Some("lost"), Some("12D3KooWother"), Some(true))
        );
    }

    /// The hub logs a chat event with the time it was said, and its broadcast when it happens.
    #[test]
    fn the_hub_log_stamps_events_with_their_own_time() {
        let mut v = view(EventKind::Message, 5);
        let said = at() - chrono::Duration::hours(2);
        v.time = wall(said);
        assert_eq!(
            render(&ChatEvent::Chat(v), Format::HubLog, at()),
            vec![
                format!("{} [5] client1: hello", said.format(STAMP)),
                "2026/11/25 14:29:31 The message has been broadcasted".to_owned()
            ]
        );
    }

    #[test]
    fn the_hub_log_reads_like_the_original_server() {
        let r = |k, l| render(&ChatEvent::Chat(view(k, l)), Format::HubLog, at());
        assert_eq!(
            r(EventKind::Join, 2),
            vec!["2026/11/25 14:29:31 client1 enter the chat system"]
        );
        assert_eq!(
            r(EventKind::Message, 5),
            vec![
                "2026/11/25 14:29:31 [5] client1: hello",
                "2026/11/25 14:29:31 The message has been broadcasted"
            ]
        );
        assert_eq!(
            r(EventKind::Leave, 6),
            vec!["2026/11/25 14:29:31 client1 leave the chat system"]
        );
    }

    /// The core's and the network layer's typed reports are worded here: a notice or an error
    /// line for people, a `notice` or `error` object with its `kind` for scripts, and the hub's
    /// own lines bare in its log.
    #[test]
    fn status_reports_are_worded_by_the_ui() {
        let queued = ChatEvent::Status(Status::Queued { from: 7 });
        assert_eq!(
            render(&queued, Format::Human, at()),
            vec![
                "2026/11/25 14:29:31 System: no one else is in the room yet: your messages (from [7]) are queued and go out when someone joins"
            ]
        );
        let full = ChatEvent::Status(Status::OutboxFull { cap: 1024 });
        let j: Value = serde_json::from_str(&render(&full, Format::Json, at())[0]).unwrap();
        assert_eq!(
            (j["type"].as_str(), j["kind"].as_str()),
            (Some("error"), Some("outbox_full"))
        );
        assert!(j["message"].as_str().unwrap().contains("1024 messages"));
        let cut = ChatEvent::Status(Status::CutOff {
            peer: "12D3KooWabcdefgh".into(),
        });
        assert!(
            render(&cut, Format::Human, at())[0]
                .ends_with("cut off peer abcdefgh for sending invalid messages")
        );
        let reg = ChatEvent::Status(Status::Registered {
            peer: "12D3KooWx".into(),
            room: "chitty-chat".into(),
            ttl: 120,
        });
        assert_eq!(
            render(&reg, Format::HubLog, at()),
            vec!["2026/11/25 14:29:31 12D3KooWx registered in room chitty-chat for 120 s"]
        );
    }

    /// History the hub merely learned (by sync) was not broadcast by it.
    #[test]
    fn the_hub_log_does_not_say_caught_up_lines_were_broadcast() {
        let mut v = view(EventKind::Message, 5);
        v.sync = true;
        let lines = render(&ChatEvent::Chat(v), Format::HubLog, at());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].ends_with("[5] client1: hello (caught up)"),
            "{lines:?}"
        );
        let stopped = render(&ChatEvent::Stopped, Format::HubLog, at());
        assert!(
            stopped[0].ends_with("chitty-node hub stopped"),
            "{stopped:?}"
        );
    }

    #[test]
    fn short_ids_are_the_tail() {
        assert_eq!(short_id("12D3KooWabcdefgh"), "abcdefgh");
        assert_eq!(short_id("abc"), "abc");
    }
}
