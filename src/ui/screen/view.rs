//! Drawing the chat screen's state with ratatui: the conversation (wrapped here, so that the
//! scrolled view is counted in the rows it really takes), the side pane of who is here, the
//! status line and the input line. Any size works, down to a single row: parts that do not fit
//! are left out, never drawn over each other.

use chrono::{DateTime, Local};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use crate::core::name::MAX_TEXT_CHARS;
use crate::ui::render::short_id;

use super::state::{Conversation, Entry, Reach, Screen, Tone};

/// Terminals at least this wide show the side pane unless it is hidden (F2).
pub const PANE_MIN_WIDTH: usize = 80;
/// The side pane's width, its border included.
pub const PANE_WIDTH: u16 = 28;
/// Conversations at least this wide stamp lines with the date and time as the line mode does;
/// narrower ones with the time to the second (the day separators give the date), then to the
/// minute.
pub const FULL_STAMP_WIDTH: usize = 90;
/// See [`FULL_STAMP_WIDTH`].
pub const SECONDS_STAMP_WIDTH: usize = 50;

/// Readable on dark and on light backgrounds: mid-luminance colours of the 256-colour cube.
const NICK_COLOURS: [u8; 14] = [26, 28, 31, 37, 62, 64, 91, 94, 125, 127, 130, 133, 166, 161];
const DIM: Color = Color::DarkGray;
const JOIN: Color = Color::Indexed(28);
const LEAVE: Color = Color::Indexed(130);
const LOST: Color = Color::Indexed(160);
const INFO: Color = Color::Indexed(67);

/// A peer's name colour: fixed by its peer id, so the same across restarts and on every screen.
pub fn nick_colour(peer: &str) -> Color {
    // FNV-1a: small, stable across versions and platforms (std's hasher is neither promised).
    let mut h: u32 = 0x811c_9dc5;
    for b in peer.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    Color::Indexed(NICK_COLOURS[h as usize % NICK_COLOURS.len()])
}

/// `s` cut to `cols` columns, with an ellipsis when cut.
pub fn fit(s: &str, cols: usize) -> String {
    if s.width() <= cols {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut w = 0;
    for g in s.graphemes(true) {
        if w + g.width() + 1 > cols {
            break;
        }
        w += g.width();
        out.push_str(g);
    }
    if cols > 0 {
        out.push('…');
    }
    out
}

/// Lays `spans` out in rows of `width` columns; rows after the first start with `indent`
/// spaces. Breaks between words; a word longer than a row is cut between graphemes.
fn wrap(spans: Vec<Span<'static>>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let indent = if indent * 2 > width { 0 } else { indent };
    // Each grapheme with its style, then rows cut from them.
    let cells: Vec<(String, Style)> = spans
        .iter()
        .flat_map(|s| {
            s.content
                .graphemes(true)
                .map(move |g| (g.to_owned(), s.style))
        })
        .collect();
    // Words (runs of non-spaces) and single spaces, each kept whole on a row when it fits.
    let mut words: Vec<Vec<(String, Style)>> = Vec::new();
    for cell in cells {
        let space = cell.0 == " ";
        match words.last_mut() {
            Some(w) if !space && w.last().is_some_and(|(g, _)| g != " ") => w.push(cell),
            _ => words.push(vec![cell]),
        }
    }
    let mut rows: Vec<Vec<(String, Style)>> = Vec::new();
    let mut row: Vec<(String, Style)> = Vec::new();
    let mut col = 0;
    let new_row = |rows: &mut Vec<Vec<(String, Style)>>, row: &mut Vec<(String, Style)>| {
        rows.push(std::mem::take(row));
        row.push((" ".repeat(indent), Style::default()));
        indent
    };
    for word in words {
        let w: usize = word.iter().map(|(g, _)| g.width()).sum();
        if col + w > width && col > indent && w <= width - indent {
            col = new_row(&mut rows, &mut row);
            if word[0].0 == " " {
                // A space that would start a row is the break itself.
                continue;
            }
        }
        for cell in word {
            let cw = cell.0.width();
            if col + cw > width && col > indent {
                col = new_row(&mut rows, &mut row);
            }
            col += cw;
            row.push(cell);
        }
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows.into_iter()
        .map(|r| {
            // Neighbouring cells of one style become one span.
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (g, style) in r {
                match spans.last_mut() {
                    Some(last) if last.style == style => last.content.to_mut().push_str(&g),
                    _ => spans.push(Span::styled(g, style)),
                }
            }
            Line::from(spans)
        })
        .collect()
}

fn stamp(at: DateTime<Local>, width: usize) -> String {
    if width >= FULL_STAMP_WIDTH {
        at.format("%Y/%m/%d %H:%M:%S").to_string()
    } else if width >= SECONDS_STAMP_WIDTH {
        at.format("%H:%M:%S").to_string()
    } else {
        at.format("%H:%M").to_string()
    }
}

/// A full-width rule with a label in its middle.
fn rule(label: &str, width: usize, style: Style) -> Line<'static> {
    let label = fit(&format!(" {label} "), width);
    let side = width.saturating_sub(label.width()) / 2;
    let right = width.saturating_sub(label.width() + side);
    Line::from(vec![
        Span::styled("─".repeat(side), style),
        Span::styled(label, style),
        Span::styled("─".repeat(right), style),
    ])
}

/// The rows of one entry at `width` columns: a day separator when its date is not that of
/// `prev` (or it is the first), the read marker when it is the first unread, then its text, wrapped.
pub fn entry_rows(
    entry: &Entry,
    prev: Option<&Entry>,
    marked: bool,
    me: Option<&str>,
    width: usize,
) -> Vec<Line<'static>> {
    let mut rows = Vec::new();
    if prev.is_none_or(|p| p.at.date_naive() != entry.at.date_naive()) {
        rows.push(rule(
            &entry.at.format("%A %-d %B %Y").to_string(),
            width,
            Style::new().fg(DIM),
        ));
    }
    if marked {
        rows.push(rule(
            "new since you were away",
            width,
            Style::new().fg(LOST),
        ));
    }
    let mut spans = vec![Span::styled(
        format!("{} ", stamp(entry.at, width)),
        Style::new().fg(DIM),
    )];
    if let Some(l) = entry.lamport {
        spans.push(Span::styled(format!("[{l}] "), Style::new().fg(DIM)));
    }
    let indent: usize = spans.iter().map(|s| s.content.width()).sum();
    match (&entry.author, entry.tone) {
        (Some((name, peer)), _) => {
            let mut style = Style::new()
                .fg(nick_colour(peer))
                .add_modifier(Modifier::BOLD);
            let mut text = Style::new();
            if entry.mention {
                style = style.add_modifier(Modifier::REVERSED);
                text = text.add_modifier(Modifier::BOLD);
            }
            if me == Some(peer.as_str()) {
                text = text.add_modifier(Modifier::DIM);
            }
            spans.push(Span::styled(name.clone(), style));
            spans.push(Span::styled(": ".to_owned(), Style::new().fg(DIM)));
            spans.push(Span::styled(entry.text.clone(), text));
        }
        (None, tone) => {
            let (mark, colour) = match tone {
                Tone::Join => ("-->", JOIN),
                Tone::Leave => ("<--", LEAVE),
                Tone::Lost => ("<-x", LOST),
                Tone::Error => ("!!!", Color::Red),
                Tone::Info | Tone::Said => ("---", INFO),
            };
            let style = Style::new().fg(colour);
            spans.push(Span::styled(format!("{mark} "), style));
            spans.push(Span::styled(entry.text.clone(), style));
        }
    }
    rows.extend(wrap(spans, width, indent));
    rows
}

/// How many rows `entry` takes when added after conversation `c`'s last entry, at `width`
/// (the screen's [`Measure`](super::state::Measure)).
pub fn rows_of(c: &Conversation, me: Option<&str>, width: usize, entry: &Entry) -> usize {
    let (first, entries) = c.entries();
    let number = first + entries.len() as u64;
    entry_rows(
        entry,
        entries.back(),
        c.marker == Some(number),
        me,
        width.max(1),
    )
    .len()
}

/// Where each part goes in `area`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The conversation.
    pub conversation: Rect,
    /// Who is here, when shown.
    pub pane: Option<Rect>,
    /// The status line.
    pub status: Option<Rect>,
    /// The input line.
    pub input: Rect,
}

/// Splits the terminal: the input line at the bottom, the status line above it (when there are
/// three rows or more), the pane on the right (when shown and it leaves 40 columns).
pub fn areas(area: Rect, pane: Option<bool>) -> Areas {
    let status_rows = u16::from(area.height >= 3);
    let [main, status, input] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(status_rows),
        Constraint::Length(1.min(area.height)),
    ])
    .areas(area);
    let show = pane.unwrap_or(usize::from(area.width) >= PANE_MIN_WIDTH)
        && area.width >= PANE_WIDTH + 40
        && main.height > 0;
    let (conversation, pane) = if show {
        let [c, p] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(PANE_WIDTH)]).areas(main);
        (c, Some(p))
    } else {
        (main, None)
    };
    Areas {
        conversation,
        pane,
        status: (status_rows > 0).then_some(status),
        input,
    }
}

/// Draws the whole screen, and keeps the scroll within what there is.
pub fn draw(frame: &mut Frame, screen: &mut Screen) {
    let a = areas(frame.area(), screen.pane);
    screen.width = usize::from(a.conversation.width);
    screen.pane_shown = a.pane.is_some();
    draw_conversation(frame, a.conversation, screen);
    if let Some(p) = a.pane {
        draw_pane(frame, p, screen);
    }
    if let Some(s) = a.status {
        draw_status(frame, s, screen);
    }
    draw_input(frame, a.input, screen);
    if screen.no_colour {
        // One place for `NO_COLOR`: every colour off, the modifiers (bold, reverse) kept.
        for cell in &mut frame.buffer_mut().content {
            cell.fg = Color::Reset;
            cell.bg = Color::Reset;
        }
    }
}

fn draw_conversation(frame: &mut Frame, area: Rect, screen: &mut Screen) {
    let height = usize::from(area.height);
    let width = usize::from(area.width);
    if height == 0 || width == 0 {
        return;
    }
    let me = screen.me.as_ref().map(|m| m.peer.clone());
    let me = me.as_deref();
    let current = screen.current;
    let Some(c) = screen.rooms.get(current) else {
        return;
    };
    let (first, entries) = c.entries();
    // From the newest entry back, until the view (scrolled up `scroll` rows) is full.
    let want = height + c.scroll;
    let mut rows: Vec<Line<'static>> = Vec::new();
    for i in (0..entries.len()).rev() {
        let mut r = entry_rows(
            &entries[i],
            i.checked_sub(1).and_then(|p| entries.get(p)),
            c.marker == Some(first + i as u64),
            me,
            width,
        );
        r.extend(rows);
        rows = r;
        if rows.len() >= want {
            break;
        }
    }
    // Not that much to scroll back to: stop at the oldest line.
    let max_scroll = rows.len().saturating_sub(height);
    if c.scroll > max_scroll {
        let back = (c.scroll - max_scroll) as isize;
        screen.scroll_by(-back);
    }
    let Some(c) = screen.rooms.get(current) else {
        return;
    };
    let end = rows.len() - c.scroll.min(rows.len());
    let start = end.saturating_sub(height);
    let mut view: Vec<Line<'static>> = rows[start..end].to_vec();
    if c.scroll > 0 {
        let mentions = if c.unseen_mentions > 0 {
            format!(", {} mentioning you", c.unseen_mentions)
        } else {
            String::new()
        };
        let label = if c.unseen == 0 {
            "scrolled up; End or Esc: back to the newest".to_owned()
        } else {
            format!("{} new{mentions}; End or Esc: back to the newest", c.unseen)
        };
        if view.len() == height {
            view.pop();
        }
        view.push(rule(
            &label,
            width,
            Style::new().add_modifier(Modifier::REVERSED),
        ));
    }
    frame.render_widget(Paragraph::new(view), area);
}

fn draw_pane(frame: &mut Frame, area: Rect, screen: &Screen) {
    let members = screen.members();
    let present = members.iter().filter(|m| m.reach != Reach::Lost).count();
    let block = Block::new()
        .borders(Borders::LEFT)
        .border_style(Style::new().fg(DIM))
        .title(format!(" here: {present} "));
    let inner = block.inner(area);
    let cols = usize::from(inner.width);
    let name_cols = cols.saturating_sub(1 + 8 + 1 + 6 + 1);
    let lines: Vec<Line<'static>> = members
        .iter()
        .map(|m| {
            let (label, style) = match m.reach {
                Reach::Me => ("you", Style::new().add_modifier(Modifier::BOLD)),
                Reach::Direct => ("direct", Style::new()),
                Reach::Relayed => ("relay", Style::new()),
                Reach::Heard => ("via", Style::new()),
                Reach::Lost => (
                    "lost",
                    Style::new().fg(DIM).add_modifier(Modifier::CROSSED_OUT),
                ),
            };
            let name_style = if m.reach == Reach::Lost {
                style
            } else {
                Style::new().fg(nick_colour(&m.peer))
            };
            let name = fit(&m.user, name_cols);
            let pad = name_cols.saturating_sub(name.width());
            Line::from(vec![
                Span::raw(" "),
                Span::styled(name, name_style),
                Span::raw(" ".repeat(pad + 1)),
                Span::styled(short_id(&m.peer).to_owned(), Style::new().fg(DIM)),
                Span::styled(format!(" {label:>6}"), style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The status line's text, as spans.
pub fn status_spans(screen: &Screen) -> Vec<Span<'static>> {
    let bar = Style::new().add_modifier(Modifier::REVERSED);
    let Some(me) = &screen.me else {
        return vec![Span::styled(" starting…".to_owned(), bar)];
    };
    let mut spans = vec![Span::styled(
        format!(" {}#{} ", me.user, short_id(&me.peer)),
        bar.add_modifier(Modifier::BOLD),
    )];
    if let Some(c) = screen.room() {
        let number = if screen.rooms.len() > 1 {
            format!("{}:", screen.current + 1)
        } else {
            String::new()
        };
        spans.push(Span::styled(format!("│ {number}{} ", c.label), bar));
    }
    let n = screen.connected();
    if n == 0 {
        spans.push(Span::styled(
            "│ alone: lines will be queued ".to_owned(),
            bar.fg(LOST).add_modifier(Modifier::BOLD),
        ));
    } else {
        let peers = if n == 1 { "peer" } else { "peers" };
        spans.push(Span::styled(format!("│ {n} {peers} "), bar));
    }
    if let Some(hub) = screen.hub() {
        spans.push(Span::styled(format!("│ hub {} ", short_id(hub)), bar));
    }
    if let Some(c) = screen.room()
        && c.unseen > 0
    {
        let mentions = if c.unseen_mentions > 0 {
            format!(" ({} @you)", c.unseen_mentions)
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!("│ {} unread{mentions} ", c.unseen),
            bar.add_modifier(Modifier::BOLD),
        ));
    }
    // The hotlist: other rooms with something unread, by their Alt number.
    let hot = screen.hotlist();
    if !hot.is_empty() {
        spans.push(Span::styled("│ ".to_owned(), bar));
        for (n, c) in hot {
            let mentions = if c.unseen_mentions > 0 {
                format!(",{}@", c.unseen_mentions)
            } else {
                String::new()
            };
            let style = if c.unseen_mentions > 0 {
                bar.fg(LOST).add_modifier(Modifier::BOLD)
            } else {
                bar.add_modifier(Modifier::BOLD)
            };
            spans.push(Span::styled(
                format!("{n}:{} {}{mentions} ", c.label, c.unseen),
                style,
            ));
        }
    }
    spans
}

fn draw_status(frame: &mut Frame, area: Rect, screen: &Screen) {
    let bar = Style::new().add_modifier(Modifier::REVERSED);
    let spans = status_spans(screen);
    let used: usize = spans.iter().map(|s| s.content.width()).sum();
    let mut line = wrap(spans, usize::from(area.width).max(1), 0)
        .into_iter()
        .next()
        .unwrap_or_default();
    let fill = usize::from(area.width).saturating_sub(used);
    line.spans.push(Span::styled(" ".repeat(fill), bar));
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_input(frame: &mut Frame, area: Rect, screen: &Screen) {
    let width = usize::from(area.width);
    if width == 0 || area.height == 0 {
        return;
    }
    if let Some((lines, _)) = &screen.confirm {
        let ask = format!(
            "send the {} pasted lines as {} messages? [y/N] ",
            lines.len(),
            lines.len()
        );
        let ask = fit(&ask, width);
        let col = ask.width().min(width.saturating_sub(1));
        frame.render_widget(
            Paragraph::new(Span::styled(ask, Style::new().add_modifier(Modifier::BOLD))),
            area,
        );
        frame.set_cursor_position(Position::new(area.x + col as u16, area.y));
        return;
    }
    let count = screen.count().map(|(n, over)| {
        let style = if over {
            Style::new().fg(LOST).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(DIM)
        };
        Span::styled(format!(" {n}/{MAX_TEXT_CHARS}"), style)
    });
    let count_cols = count
        .as_ref()
        .map_or(0, |c| c.content.width())
        .min(width / 2);
    let prompt = if width > 4 { "> " } else { "" };
    let text_cols = width.saturating_sub(prompt.len() + count_cols).max(1);
    let e = &screen.editor;
    let (start, end, col) = e.window(text_cols);
    let mut spans = vec![
        Span::styled(prompt, Style::new().fg(DIM)),
        Span::raw(e.text()[start..end].to_owned()),
    ];
    let shown = prompt.len() + e.text()[start..end].width();
    if let Some(c) = count
        && count_cols > 0
    {
        spans.push(Span::raw(
            " ".repeat(width.saturating_sub(shown + count_cols)),
        ));
        spans.push(c);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    let x = (prompt.len() + col).min(width.saturating_sub(1));
    frame.set_cursor_position(Position::new(area.x + x as u16, area.y));
}
