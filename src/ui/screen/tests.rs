//! The chat screen drawn on ratatui's test backend: what each part shows for a given state, read
//! back from the buffer as text and styles, at wide, narrow and tiny sizes.

use chrono::{DateTime, Local, TimeZone};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;

use super::state::{MANY_PASTE_LINES, Measure, Screen};
use super::view;
use crate::core::command::{Command, UserCommand};
use crate::core::event::{
    ChatEvent, EventKind, EventView, LeaveReason, LinkView, ParticipantView, Update,
};
use crate::core::time::WallTime;

const ME: &str = "12D3KooWMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeAAAAAAAA";
const BOB: &str = "12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBBBBBBBB";
const CAROL: &str = "12D3KooWCarolCarolCarolCarolCarolCarolCarolCCCCCCCC";

fn at(h: u32, m: u32) -> DateTime<Local> {
    Local.with_ymd_and_hms(2026, 12, 2, h, m, 0).unwrap()
}

fn wall(t: DateTime<Local>) -> WallTime {
    WallTime::from_unix_millis(u64::try_from(t.timestamp_millis()).unwrap()).unwrap()
}

fn view(kind: EventKind, lamport: u64, user: &str, peer: &str, text: Option<&str>) -> EventView {
    EventView {
        kind,
        lamport,
        time: wall(at(14, 30)),
        user: user.to_owned(),
        peer: peer.to_owned(),
        text: text.map(str::to_owned),
        reason: None,
        by: None,
        sync: false,
        stored: false,
        ambiguous: false,
    }
}

fn said(lamport: u64, user: &str, peer: &str, text: &str) -> ChatEvent {
    ChatEvent::Chat(view(EventKind::Message, lamport, user, peer, Some(text)))
}

fn ready() -> ChatEvent {
    ChatEvent::Ready {
        peer: ME.to_owned(),
        user: "alice".to_owned(),
        topic: LOBBY.to_owned(),
        listen: Vec::new(),
    }
}

/// A screen that is ready, with bob and carol here (bob direct, carol through others).
fn screen() -> Screen {
    let mut s = Screen::default();
    s.width = 100;
    let now = at(14, 30);
    feed(&mut s, &ready(), now, view::rows_of);
    for c in s.poll() {
        s.sent(&c, false);
    }
    feed(
        &mut s,
        &ChatEvent::Who(vec![
            ParticipantView {
                user: "alice".to_owned(),
                peer: ME.to_owned(),
                me: true,
            },
            ParticipantView {
                user: "bob".to_owned(),
                peer: BOB.to_owned(),
                me: false,
            },
            ParticipantView {
                user: "carol".to_owned(),
                peer: CAROL.to_owned(),
                me: false,
            },
        ]),
        now,
        view::rows_of,
    );
    feed(
        &mut s,
        &ChatEvent::Links(vec![LinkView {
            peer: BOB.to_owned(),
            user: Some("bob".to_owned()),
            addr: "/ip4/10.0.0.2/tcp/4001".to_owned(),
            hub: false,
        }]),
        now,
        view::rows_of,
    );
    s
}

const LOBBY: &str = "chitty-chat/lobby";

/// Hands the screen `event` as the node does: about the lobby (the room it is in).
fn feed(s: &mut Screen, event: &ChatEvent, now: DateTime<Local>, measure: Measure) {
    let update = Update {
        room: Some(LOBBY.to_owned()),
        event: event.clone(),
    };
    s.on_update(&update, now, measure);
}

fn draw(s: &mut Screen, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, s)).unwrap();
    t.backend().buffer().clone()
}

fn rows(b: &Buffer) -> Vec<String> {
    (0..b.area.height)
        .map(|y| {
            let mut line = String::new();
            let mut x = 0;
            while x < b.area.width {
                let cell = &b[(x, y)];
                line.push_str(cell.symbol());
                x += 1;
            }
            line.trim_end().to_owned()
        })
        .collect()
}

/// Where `needle` starts on screen.
fn find(b: &Buffer, needle: &str) -> Option<(u16, u16)> {
    rows(b).iter().enumerate().find_map(|(y, r)| {
        r.find(needle).map(|i| {
            let x = r[..i].chars().count();
            (u16::try_from(x).unwrap(), u16::try_from(y).unwrap())
        })
    })
}

fn text(b: &Buffer) -> String {
    rows(b).join("\n")
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_str(s: &mut Screen, text: &str) {
    for c in text.chars() {
        s.on_key(key(KeyCode::Char(c)), 20, at(14, 31), view::rows_of);
    }
}

#[test]
fn a_message_shows_the_stamp_the_lamport_time_and_the_name_in_its_colour() {
    let mut s = screen();
    feed(
        &mut s,
        &said(7, "bob", BOB, "hello there"),
        at(14, 31),
        view::rows_of,
    );
    let b = draw(&mut s, 120, 20);
    assert!(
        text(&b).contains("2026/12/02 14:30:00 [7] bob: hello there"),
        "{}",
        text(&b)
    );
    let (x, y) = find(&b, "bob: hello").unwrap();
    assert_eq!(b[(x, y)].fg, view::nick_colour(BOB));
    assert!(b[(x, y)].modifier.contains(Modifier::BOLD));
    // The colour is the peer's, whatever its name.
    assert_eq!(view::nick_colour(BOB), view::nick_colour(BOB));
    assert_ne!(view::nick_colour(BOB), view::nick_colour(CAROL));
}

#[test]
fn joins_leaves_and_losses_are_system_lines_in_their_own_colours() {
    let mut s = screen();
    let now = at(14, 31);
    feed(
        &mut s,
        &ChatEvent::Chat(view(EventKind::Join, 3, "dave", BOB, None)),
        now,
        view::rows_of,
    );
    let mut lost = view(EventKind::Leave, 4, "carol", CAROL, None);
    lost.reason = Some(LeaveReason::Lost);
    feed(&mut s, &ChatEvent::Chat(lost), now, view::rows_of);
    feed(&mut s, &said(5, "bob", BOB, "hi"), now, view::rows_of);
    let b = draw(&mut s, 160, 20);
    let t = text(&b);
    assert!(
        t.contains("[3] --> Participant dave joined Chitty-Chat at Lamport time 3"),
        "{t}"
    );
    assert!(
        t.contains(
            "[4] <-x Participant carol left Chitty-Chat at Lamport time 4 (connection lost)"
        ),
        "{t}"
    );
    let join = find(&b, "--> Participant dave").unwrap();
    let loss = find(&b, "<-x Participant carol").unwrap();
    let msg = find(&b, "bob: hi").map(|(x, y)| (x + 5, y)).unwrap();
    assert_ne!(b[join].fg, b[loss].fg);
    assert_ne!(b[join].fg, b[(msg.0, msg.1)].fg);
    // The lost participant is greyed in the pane.
    let gone = find(&b, "carol ").unwrap();
    let gone = rows(&b)[usize::from(gone.1)].clone();
    assert!(gone.contains("lost"), "{gone}");
}

#[test]
fn the_pane_lists_who_is_here_and_how_each_is_reached() {
    let mut s = screen();
    let b = draw(&mut s, 120, 12);
    let t = text(&b);
    assert!(t.contains("here: 3"), "{t}");
    let line_of = |name: &str| {
        rows(&b)
            .into_iter()
            .find(|r| r.contains(&format!("│ {name} ")))
            .unwrap_or_default()
    };
    assert!(line_of("alice").ends_with("AAAAAAAA    you"), "{t}");
    assert!(line_of("bob").ends_with("BBBBBBBB direct"), "{t}");
    assert!(line_of("carol").ends_with("CCCCCCCC    via"), "{t}");
    // Narrow: no pane; F2 cannot force it where it does not fit.
    let b = draw(&mut s, 60, 12);
    assert!(!text(&b).contains("here: 3"));
    // Wide: F2 hides it, and again shows it.
    let _ = draw(&mut s, 120, 12);
    s.on_key(key(KeyCode::F(2)), 10, at(14, 31), view::rows_of);
    let b = draw(&mut s, 120, 12);
    assert!(!text(&b).contains("here: 3"), "{}", text(&b));
    s.on_key(key(KeyCode::F(2)), 10, at(14, 31), view::rows_of);
    assert!(text(&draw(&mut s, 120, 12)).contains("here: 3"));
}

#[test]
fn the_status_line_says_who_we_are_where_and_whether_anyone_hears() {
    let mut s = screen();
    let b = draw(&mut s, 120, 10);
    let status = rows(&b)[8].clone();
    assert!(status.contains("alice#AAAAAAAA"), "{status}");
    assert!(status.contains("#lobby"), "{status}");
    assert!(status.contains("1 peer"), "{status}");
    assert!(b[(1, 8)].modifier.contains(Modifier::REVERSED));
    feed(
        &mut s,
        &ChatEvent::Peer {
            peer: BOB.to_owned(),
            connected: false,
            addr: String::new(),
        },
        at(14, 31),
        view::rows_of,
    );
    let b = draw(&mut s, 120, 10);
    assert!(
        rows(&b)[8].contains("alone: lines will be queued"),
        "{}",
        rows(&b)[8]
    );
}

#[test]
fn a_mention_of_our_name_is_highlighted_and_counted_while_scrolled_up() {
    let mut s = screen();
    let now = at(14, 31);
    for i in 0..30 {
        feed(
            &mut s,
            &said(10 + i, "bob", BOB, &format!("line {i}")),
            now,
            view::rows_of,
        );
    }
    let _ = draw(&mut s, 100, 12);
    s.on_key(key(KeyCode::PageUp), 9, now, view::rows_of);
    let before = rows(&draw(&mut s, 100, 12));
    feed(
        &mut s,
        &said(50, "carol", CAROL, "hey Alice, look"),
        now,
        view::rows_of,
    );
    feed(
        &mut s,
        &said(51, "bob", BOB, "malice is not a mention"),
        now,
        view::rows_of,
    );
    let b = draw(&mut s, 100, 12);
    let after = rows(&b);
    // The view held still: the same lines at the same places (the last row is the indicator).
    assert_eq!(before[..9], after[..9]);
    assert!(after[9].contains("2 new, 1 mentioning you"), "{}", after[9]);
    assert!(after[10].contains("2 unread (1 @you)"), "{}", after[10]);
    s.on_key(key(KeyCode::End), 9, now, view::rows_of);
    let b = draw(&mut s, 100, 12);
    let (x, y) = find(&b, "carol: hey Alice").unwrap();
    assert!(b[(x, y)].modifier.contains(Modifier::REVERSED));
    let (x, y) = find(&b, "bob: malice").unwrap();
    assert!(!b[(x, y)].modifier.contains(Modifier::REVERSED));
    assert!(!rows(&b)[10].contains("unread"));
    // The read marker sits above the first line that came while we looked away.
    let marker = find(&b, "new since you were away").unwrap();
    assert_eq!(marker.1 + 1, find(&b, "carol: hey").unwrap().1);
}

#[test]
fn a_day_separator_comes_when_the_date_changes() {
    let mut s = screen();
    let mut v = view(EventKind::Message, 9, "bob", BOB, Some("tomorrow"));
    v.time = wall(Local.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap());
    feed(
        &mut s,
        &said(8, "bob", BOB, "today"),
        at(14, 31),
        view::rows_of,
    );
    feed(&mut s, &ChatEvent::Chat(v), at(14, 31), view::rows_of);
    let b = draw(&mut s, 120, 12);
    let sep = find(&b, "Thursday 3 December 2026").unwrap();
    assert_eq!(sep.1 + 1, find(&b, "bob: tomorrow").unwrap().1);
}

#[test]
fn wide_characters_and_long_names_wrap_without_breaking_a_character() {
    let mut s = screen();
    let long = "漢字".repeat(20);
    feed(
        &mut s,
        &said(8, &"n".repeat(32), BOB, &long),
        at(14, 31),
        view::rows_of,
    );
    let b = draw(&mut s, 50, 16);
    // Every row of the conversation holds whole characters: 漢 never split over two rows.
    let all: String = rows(&b).join("");
    assert_eq!(all.matches('漢').count(), 20, "{}", text(&b));
}

#[test]
fn any_size_draws_without_panicking() {
    let mut s = screen();
    feed(
        &mut s,
        &said(8, "bob", BOB, "漢字 and a longer line to wrap"),
        at(14, 31),
        view::rows_of,
    );
    type_str(&mut s, "typing 漢字 here");
    for w in [1u16, 2, 5, 10, 20, 39, 40, 79, 80, 200] {
        for h in [1u16, 2, 3, 5, 9, 10, 40] {
            let b = draw(&mut s, w, h);
            assert_eq!(b.area.width, w);
        }
    }
    // Scrolled far up on a tiny screen: the scroll stops at the oldest line.
    s.scroll_by(1000);
    let _ = draw(&mut s, 20, 4);
    assert!(s.scroll() < 1000);
}

#[test]
fn tab_completes_names_and_commands_and_cycles() {
    let mut s = screen();
    let now = at(14, 31);
    type_str(&mut s, "b");
    s.on_key(key(KeyCode::Tab), 10, now, view::rows_of);
    assert_eq!(s.editor.text(), "bob: ");
    type_str(&mut s, "ask c");
    s.on_key(key(KeyCode::Tab), 10, now, view::rows_of);
    assert_eq!(s.editor.text(), "bob: ask carol ");
    s.on_key(ctrl('u'), 10, now, view::rows_of);
    type_str(&mut s, "/h");
    s.on_key(key(KeyCode::Tab), 10, now, view::rows_of);
    assert_eq!(s.editor.text(), "/history ");
    s.on_key(key(KeyCode::Tab), 10, now, view::rows_of);
    assert_eq!(s.editor.text(), "/help ");
}

#[test]
fn the_count_shows_near_the_limit_and_warns_past_it() {
    let mut s = screen();
    type_str(&mut s, &"x".repeat(90));
    assert!(!text(&draw(&mut s, 200, 6)).contains("/128"));
    type_str(&mut s, &"y".repeat(40));
    let b = draw(&mut s, 200, 6);
    let (x, y) = find(&b, "130/128").unwrap();
    assert_ne!(b[(x, y)].fg, ratatui::style::Color::Reset);
}

#[test]
fn a_paste_of_a_few_lines_is_sent_and_of_many_asks_first() {
    let mut s = screen();
    let now = at(14, 31);
    // Into an empty line: a few lines go out as they are.
    let sent = s.on_paste("one\ntwo\n", now, view::rows_of);
    assert_eq!(sent.len(), 2);
    let many: String = (0..=MANY_PASTE_LINES).map(|i| format!("l{i}\n")).collect();
    assert!(s.on_paste(&many, now, view::rows_of).is_empty());
    assert!(text(&draw(&mut s, 100, 6)).contains("send the 6 pasted lines as 6 messages? [y/N]"));
    let sent = s.on_key(key(KeyCode::Char('y')), 5, now, view::rows_of);
    assert_eq!(sent.len(), MANY_PASTE_LINES + 1);
    // `N` is the default: Enter, like `n`, sends nothing.
    for no in [KeyCode::Enter, KeyCode::Char('n')] {
        assert!(s.on_paste(&many, now, view::rows_of).is_empty());
        assert!(s.on_key(key(no), 5, now, view::rows_of).is_empty());
    }
    assert!(text(&draw(&mut s, 100, 6)).contains("the paste of 6 lines was not sent"));
    // One line pasted goes into the input line, not out; so does any paste into a line begun
    // (a wrapped line's pieces join, tabs are spaces).
    assert!(s.on_paste("half", now, view::rows_of).is_empty());
    assert!(
        s.on_paste("\tone\n     two\n", now, view::rows_of)
            .is_empty()
    );
    assert_eq!(s.editor.text(), "halfone two");
    assert!(s.on_paste("x\ty", now, view::rows_of).is_empty());
    assert_eq!(s.editor.text(), "halfone twox y");
}

#[test]
fn enter_sends_and_ctrl_c_or_ctrl_d_leave() {
    let mut s = screen();
    let now = at(14, 31);
    type_str(&mut s, "hi all");
    let sent = s.on_key(key(KeyCode::Enter), 5, now, view::rows_of);
    assert!(
        matches!(&sent[..], [Command { room: Some(r), cmd: UserCommand::Say(t) }] if t.as_str() == "hi all" && r == LOBBY)
    );
    assert_eq!(s.editor.text(), "");
    assert_eq!(
        s.on_key(ctrl('c'), 5, now, view::rows_of),
        vec![Command::plain(UserCommand::Quit)]
    );
    assert_eq!(
        s.on_key(ctrl('d'), 5, now, view::rows_of),
        vec![Command::plain(UserCommand::Quit)]
    );
    type_str(&mut s, "/nonsense");
    assert!(
        s.on_key(key(KeyCode::Enter), 5, now, view::rows_of)
            .is_empty()
    );
    assert_eq!(
        s.editor.text(),
        "/nonsense",
        "a refused line is kept, to be mended"
    );
    assert!(text(&draw(&mut s, 120, 8)).contains("!!!"));
}

#[test]
fn answers_to_the_screens_own_polls_are_not_shown_but_the_users_are() {
    let mut s = screen();
    let now = at(14, 31);
    let before = s.room().unwrap().entries().1.len();
    s.sent(&Command::plain(UserCommand::Who), false);
    feed(&mut s, &ChatEvent::Who(Vec::new()), now, view::rows_of);
    assert_eq!(s.room().unwrap().entries().1.len(), before);
    s.sent(&Command::plain(UserCommand::Who), true);
    feed(&mut s, &ChatEvent::Who(Vec::new()), now, view::rows_of);
    assert_eq!(s.room().unwrap().entries().1.len(), before + 1);
}

#[test]
fn no_colour_keeps_the_highlights_but_no_colours() {
    let mut s = screen();
    s.no_colour = true;
    feed(
        &mut s,
        &said(7, "carol", CAROL, "alice: look"),
        at(14, 31),
        view::rows_of,
    );
    let b = draw(&mut s, 120, 10);
    let (x, y) = find(&b, "carol: alice").unwrap();
    assert!(b[(x, y)].modifier.contains(Modifier::REVERSED));
    for cell in &b.content {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
}

#[test]
fn a_room_not_on_screen_counts_unread_and_mentions_until_switched_to() {
    let mut s = screen();
    let now = at(14, 31);
    type_str(&mut s, "/join b");
    let sent = s.on_key(key(KeyCode::Enter), 10, now, view::rows_of);
    assert!(matches!(
        &sent[..],
        [Command {
            cmd: UserCommand::Join(_),
            ..
        }]
    ));
    s.sent(&sent[0], true);
    let opened = Update {
        room: Some("chitty-chat/b".to_owned()),
        event: ChatEvent::Opened(crate::core::event::RoomView {
            topic: "chitty-chat/b".to_owned(),
            name: Some("b".to_owned()),
            private: false,
            present: 1,
        }),
    };
    s.on_update(&opened, now, view::rows_of);
    assert_eq!(s.current, 1, "the joined room comes on screen");
    let status = rows(&draw(&mut s, 120, 10))[8].clone();
    assert!(status.contains("2:#b"), "{status}");
    // Lines in the lobby, off screen: counted, a mention apart.
    feed(
        &mut s,
        &said(20, "bob", BOB, "quiet line"),
        now,
        view::rows_of,
    );
    feed(
        &mut s,
        &said(21, "bob", BOB, "alice: look"),
        now,
        view::rows_of,
    );
    let b = draw(&mut s, 120, 10);
    let status = rows(&b)[8].clone();
    assert!(status.contains("1:#lobby 2,1@"), "{status}");
    assert!(!text(&b).contains("quiet line"));
    // Typed lines go to the room on screen.
    type_str(&mut s, "in b");
    let sent = s.on_key(key(KeyCode::Enter), 10, now, view::rows_of);
    assert_eq!(sent[0].room.as_deref(), Some("chitty-chat/b"));
    // Alt-1: the lobby, its lines, the marker above the first unread; the hotlist is empty.
    s.on_key(
        KeyEvent::new(KeyCode::Char('1'), KeyModifiers::ALT),
        10,
        now,
        view::rows_of,
    );
    let b = draw(&mut s, 120, 12);
    let t = text(&b);
    assert!(
        t.contains("bob: quiet line") && t.contains("bob: alice: look"),
        "{t}"
    );
    let marker = find(&b, "new since you were away").unwrap();
    assert_eq!(marker.1 + 1, find(&b, "bob: quiet line").unwrap().1);
    assert!(!rows(&b)[10].contains("2:#b"), "{}", rows(&b)[10]);
    // Ctrl-N goes round to the next room.
    s.on_key(ctrl('n'), 10, now, view::rows_of);
    assert_eq!(s.current, 1);
    // `/part` there: the lobby comes on screen at once, and what is typed next goes to it.
    type_str(&mut s, "/part");
    let sent = s.on_key(key(KeyCode::Enter), 10, now, view::rows_of);
    assert!(matches!(
        &sent[..],
        [Command { room: Some(r), cmd: UserCommand::Part }] if r == "chitty-chat/b"
    ));
    assert_eq!(s.current, 0);
    type_str(&mut s, "after the part");
    let sent = s.on_key(key(KeyCode::Enter), 10, now, view::rows_of);
    assert_eq!(sent[0].room.as_deref(), Some(LOBBY));
    // Its leave out, the room goes; news of it that comes late is shown where we are.
    let closed = Update {
        room: Some("chitty-chat/b".to_owned()),
        event: ChatEvent::Closed {
            topic: "chitty-chat/b".to_owned(),
        },
    };
    s.on_update(&closed, now, view::rows_of);
    let late = Update {
        room: Some("chitty-chat/b".to_owned()),
        event: ChatEvent::Error("late".to_owned()),
    };
    s.on_update(&late, now, view::rows_of);
    assert_eq!(s.rooms.len(), 1);
    assert!(text(&draw(&mut s, 120, 12)).contains("left #b"));
    assert_eq!(s.poll().len(), 2, "who in the lobby, and peers");
}
