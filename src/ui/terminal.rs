//! Handing the terminal back as we found it, on every way out.
//!
//! The line editor puts the terminal in raw mode (no echo, no Ctrl-C signal, no line editing) and
//! switches on bracketed paste while it reads; it switches both off only when `readline`
//! returns. A node that leaves on a signal, an error or a panic exits while the editor's thread
//! is still reading, which would leave the shell with a terminal that echoes nothing. So the
//! terminal's modes are saved at start, before the editor touches them ([`save`]), and put back
//! at the end ([`restore`], called by `main` after the run and by the panic hook that
//! [`restore_on_panic`] installs).

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The modes of stdin's terminal at start, when stdin and stdout are a terminal.
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// Switches bracketed paste off, and erases the prompt line (with whatever was half typed and
/// never sent), so that the shell's prompt starts on a clean line.
const GOODBYE: &[u8] = b"\r\x1b[K\x1b[?2004l";

/// What the chat screen switched on, off again: focus reports, mouse reports (every encoding),
/// bracketed paste; then back to the main screen, with the cursor shown.
const SCREEN_GOODBYE: &[u8] =
    b"\x1b[?1004l\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?2004l\x1b[?1049l\x1b[?25h";

/// The chat screen has the terminal (its alternate screen, mouse and focus reports).
static SCREEN: AtomicBool = AtomicBool::new(false);

/// Says that the chat screen took the terminal (`true`) or gave it back: what [`restore`]
/// undoes on a way out that skips the screen's own clean-up (a panic).
pub fn screen_on(on: bool) {
    SCREEN.store(on, Ordering::SeqCst);
}

fn get(fd: libc::c_int) -> Option<libc::termios> {
    // SAFETY: termios is plain data; all-zero is a valid value for tcgetattr to overwrite.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable termios; a bad fd only makes tcgetattr fail.
    (unsafe { libc::tcgetattr(fd, &mut t) } == 0).then_some(t)
}

fn same(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_cc == b.c_cc
}

/// Remembers the terminal's modes, when stdin and stdout are a terminal (the line editor's
/// condition). Call once, before the line editor starts.
pub fn save() {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return;
    }
    if let Some(t) = get(libc::STDIN_FILENO) {
        let _ = SAVED.set(t);
    }
}

/// Puts the saved modes back if they were changed, and then switches bracketed paste off and
/// clears the half-drawn prompt. Does nothing when nothing was saved or nothing changed (the
/// line editor had already restored them: it was not reading). Safe to call from a panic hook:
/// it takes no lock and allocates nothing.
pub fn restore() {
    let Some(saved) = SAVED.get() else { return };
    let Some(now) = get(libc::STDIN_FILENO) else {
        return;
    };
    if same(&now, saved) {
        return;
    }
    // SAFETY: `saved` is a termios that tcgetattr filled in for this same descriptor.
    // TCSANOW: do not wait for output to drain; a stopped terminal (Ctrl-S) would hang us.
    unsafe {
        libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
    }
    // Written without std's stdout lock, which a panicking thread may hold. A short or failed
    // write (the terminal is gone) is not worth anything more on the way out.
    let goodbye = if SCREEN.swap(false, Ordering::SeqCst) {
        SCREEN_GOODBYE
    } else {
        GOODBYE
    };
    // SAFETY: `goodbye` is a valid buffer of goodbye.len() bytes.
    unsafe {
        libc::write(libc::STDOUT_FILENO, goodbye.as_ptr().cast(), goodbye.len());
    }
}

/// Installs a panic hook that restores the terminal before the panic's message is printed (so
/// that it is readable), then runs the previous hook. A panic in the ui task, which the node
/// survives, restores it too: nothing reads the keyboard any more, and Ctrl-C works again to
/// leave.
pub fn restore_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}
