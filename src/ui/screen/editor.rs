//! The input line of the chat screen: a single line edited by grapheme cluster (so that an
//! accented letter made of two code points, or an emoji, moves and deletes as one), measured in
//! terminal columns (a CJK character takes two), with the editing keys of a shell and a history
//! of sent lines.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Lines kept in the input history (Up/Down).
pub const HISTORY_CAP: usize = 200;

/// The line being typed.
#[derive(Debug, Default)]
pub struct Editor {
    /// The text.
    text: String,
    /// The cursor, as a byte offset into `text` on a grapheme boundary.
    cursor: usize,
    /// Lines sent, oldest first.
    history: Vec<String>,
    /// While browsing the history: the entry shown, and the line that was being typed.
    browsing: Option<(usize, String)>,
}

fn is_word(g: &str) -> bool {
    g.chars().any(char::is_alphanumeric)
}

impl Editor {
    /// The text typed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor as a byte offset into [`Editor::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// How many characters (Unicode scalar values, the unit of the 128 limit) the line holds.
    pub fn chars(&self) -> usize {
        self.text.chars().count()
    }

    /// The columns taken by the text before the cursor.
    pub fn cursor_column(&self) -> usize {
        self.text[..self.cursor].width()
    }

    /// Inserts `s` at the cursor (line breaks become spaces: a line has none).
    pub fn insert(&mut self, s: &str) {
        let clean: String = s
            .chars()
            .map(|c| {
                if matches!(c, '\n' | '\r' | '\t') {
                    ' '
                } else {
                    c
                }
            })
            .filter(|c| !c.is_control())
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }

    fn prev_boundary(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map_or(self.cursor, |g| self.cursor + g.len())
    }

    /// The start of the word before the cursor: of letters and digits (Alt-B), or, as the
    /// shell's Ctrl-W has it, of anything but whitespace (`by_space`).
    fn word_back(&self, by_space: bool) -> usize {
        let inside = |g: &str| {
            if by_space {
                !g.chars().all(char::is_whitespace)
            } else {
                is_word(g)
            }
        };
        let graphemes: Vec<(usize, &str)> =
            self.text[..self.cursor].grapheme_indices(true).collect();
        let mut i = graphemes.len();
        while i > 0 && !inside(graphemes[i - 1].1) {
            i -= 1;
        }
        while i > 0 && inside(graphemes[i - 1].1) {
            i -= 1;
        }
        graphemes.get(i).map_or(self.cursor, |(at, _)| *at)
    }

    /// The end of the word after the cursor (Alt-F).
    fn word_forward(&self) -> usize {
        let mut at = self.cursor;
        let mut seen_word = false;
        for g in self.text[self.cursor..].graphemes(true) {
            if is_word(g) {
                seen_word = true;
            } else if seen_word {
                break;
            }
            at += g.len();
        }
        at
    }

    /// Left one grapheme.
    pub fn left(&mut self) {
        self.cursor = self.prev_boundary();
    }

    /// Right one grapheme.
    pub fn right(&mut self) {
        self.cursor = self.next_boundary();
    }

    /// To the start (Home, Ctrl-A).
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// To the end (End, Ctrl-E).
    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Back one word (Alt-B).
    pub fn word_left(&mut self) {
        self.cursor = self.word_back(false);
    }

    /// Forward one word (Alt-F).
    pub fn word_right(&mut self) {
        self.cursor = self.word_forward();
    }

    /// Deletes the grapheme before the cursor (Backspace).
    pub fn backspace(&mut self) {
        let from = self.prev_boundary();
        self.text.replace_range(from..self.cursor, "");
        self.cursor = from;
    }

    /// Deletes the grapheme under the cursor (Delete).
    pub fn delete(&mut self) {
        let to = self.next_boundary();
        self.text.replace_range(self.cursor..to, "");
    }

    /// Deletes the word before the cursor (Ctrl-W).
    pub fn delete_word(&mut self) {
        let from = self.word_back(true);
        self.text.replace_range(from..self.cursor, "");
        self.cursor = from;
    }

    /// Deletes from the start to the cursor (Ctrl-U).
    pub fn delete_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Deletes from the cursor to the end (Ctrl-K).
    pub fn delete_to_end(&mut self) {
        self.text.truncate(self.cursor);
    }

    /// Replaces the word before the cursor, from byte `from`, with `with` (Tab completion).
    pub fn replace_before_cursor(&mut self, from: usize, with: &str) {
        let from = from.min(self.cursor);
        self.text.replace_range(from..self.cursor, with);
        self.cursor = from + with.len();
    }

    /// Takes the line (Enter): the editor is empty after, and the line is in the history.
    pub fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_CAP {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    fn show(&mut self, text: String) {
        self.text = text;
        self.cursor = self.text.len();
    }

    /// The previous line of the history (Up).
    pub fn history_back(&mut self) {
        let next = match &self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.browsing = Some((self.history.len() - 1, self.text.clone()));
                self.history.len() - 1
            }
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
        };
        if let Some((i, _)) = &mut self.browsing {
            *i = next;
        }
        self.show(self.history[next].clone());
    }

    /// The next line of the history, or back to what was being typed (Down).
    pub fn history_forward(&mut self) {
        let Some((i, typed)) = self.browsing.take() else {
            return;
        };
        if i + 1 < self.history.len() {
            self.browsing = Some((i + 1, typed));
            self.show(self.history[i + 1].clone());
        } else {
            self.show(typed);
        }
    }

    /// What to show in `width` columns so that the cursor is visible: the byte range of the text
    /// and the cursor's column within it.
    pub fn window(&self, width: usize) -> (usize, usize, usize) {
        let width = width.max(1);
        let before = self.cursor_column();
        if before < width {
            // The start fits: show from it, as much as fits.
            let mut cols = 0;
            let mut end = 0;
            for (i, g) in self.text.grapheme_indices(true) {
                cols += g.width();
                if cols > width {
                    break;
                }
                end = i + g.len();
            }
            return (0, end.max(self.cursor), before);
        }
        // Scrolled: the cursor at the last column, the text before it to its left.
        let mut start = self.cursor;
        let mut cols = 0;
        for (i, g) in self.text[..self.cursor].grapheme_indices(true).rev() {
            if cols + g.width() >= width {
                break;
            }
            cols += g.width();
            start = i;
        }
        (start, self.cursor, cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        e.insert(s);
        e
    }

    #[test]
    fn wide_and_combined_characters_move_and_delete_as_one() {
        // "e" + COMBINING ACUTE, then a CJK character two columns wide.
        let mut e = typed("ae\u{301}漢");
        assert_eq!(e.cursor_column(), 4);
        e.left();
        assert_eq!(e.cursor_column(), 2);
        e.backspace();
        assert_eq!(e.text(), "a漢");
        e.end();
        e.backspace();
        assert_eq!(e.text(), "a");
        assert_eq!(e.chars(), 1);
    }

    #[test]
    fn shell_keys_edit_words() {
        let mut e = typed("hello big world");
        e.delete_word();
        assert_eq!(e.text(), "hello big ");
        // As the shell's Ctrl-W: back to the whitespace, emoji and punctuation included.
        let mut f = typed("hello 👍");
        f.delete_word();
        assert_eq!(f.text(), "hello ");
        let mut f = typed("see :) ");
        f.delete_word();
        assert_eq!(f.text(), "see ");
        e.word_left();
        assert_eq!(e.cursor(), 6);
        e.word_right();
        assert_eq!(e.cursor(), 9);
        e.delete_to_start();
        assert_eq!(e.text(), " ");
        assert_eq!(e.cursor(), 0);
        e.insert("x\ny");
        assert_eq!(e.text(), "x y ");
        e.delete_to_end();
        assert_eq!(e.text(), "x y");
    }

    #[test]
    fn history_browses_and_returns_to_the_half_typed_line() {
        let mut e = typed("one");
        e.take();
        e.insert("two");
        e.take();
        e.insert("thr");
        e.history_back();
        assert_eq!(e.text(), "two");
        e.history_back();
        assert_eq!(e.text(), "one");
        e.history_back();
        assert_eq!(e.text(), "one");
        e.history_forward();
        assert_eq!(e.text(), "two");
        e.history_forward();
        assert_eq!(e.text(), "thr");
    }

    #[test]
    fn the_window_keeps_the_cursor_visible() {
        let e = typed("0123456789");
        let (start, end, col) = e.window(4);
        assert_eq!((&e.text()[start..end], col), ("789", 3));
        let mut e = typed("漢漢漢");
        e.home();
        let (start, end, col) = e.window(4);
        assert_eq!((&e.text()[start..end], col), ("漢漢", 0));
    }
}
