//! A pseudo-terminal for the tests: runs the real binary with a pty as its stdin, stdout, stderr
//! and controlling terminal (so the line editor runs, as for a person), keeps what it draws in a
//! `vt100` screen, and reads the terminal's modes. Waits are for screen content, with timeouts.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{NODES, TIMEOUT, bin};

/// Screen size: wide enough that a timestamped chat line does not wrap.
pub const ROWS: u16 = 40;
/// Screen width.
pub const COLS: u16 = 200;

/// The terminal modes the tests compare: what a raw-mode leak changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// Canonical (line) input.
    pub icanon: bool,
    /// Echo of typed characters.
    pub echo: bool,
    /// Ctrl-C and Ctrl-Z send signals.
    pub isig: bool,
    /// Enter (CR) reads as a newline.
    pub icrnl: bool,
    /// Ctrl-S / Ctrl-Q flow control.
    pub ixon: bool,
    /// Output processing (a newline returns the carriage).
    pub opost: bool,
}

/// What the child wrote: the screen and every byte, shared with the reader thread.
struct Output {
    parser: vt100::Parser,
    bytes: Vec<u8>,
}

/// A process on a pseudo-terminal.
pub struct Pty {
    child: Child,
    master: File,
    /// Kept open so that the terminal (and its modes) outlives the child.
    slave: OwnedFd,
    output: Arc<Mutex<Output>>,
    data: std::path::PathBuf,
    /// The modes before the child started.
    pub initial: Modes,
}

fn modes_of(fd: i32) -> Modes {
    // SAFETY: an all-zero termios is a valid value for tcgetattr to fill in.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open terminal owned by the caller; t is a valid termios.
    let rc = unsafe { libc::tcgetattr(fd, &mut t) };
    assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
    Modes {
        icanon: t.c_lflag & libc::ICANON != 0,
        echo: t.c_lflag & libc::ECHO != 0,
        isig: t.c_lflag & libc::ISIG != 0,
        icrnl: t.c_iflag & libc::ICRNL != 0,
        ixon: t.c_iflag & libc::IXON != 0,
        opost: t.c_oflag & libc::OPOST != 0,
    }
}

impl Pty {
    /// `chitty-node --username NAME ARGS...` on a new terminal, with a data directory of its
    /// own.
    pub fn spawn(name: &str, args: &[&str]) -> Pty {
        let data = std::env::temp_dir().join(format!(
            "chitty-pty-{}-{}",
            std::process::id(),
            NODES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let mut cmd = Command::new(bin());
        cmd.args(["--username", name]).args(args);
        cmd.env("XDG_DATA_HOME", &data);
        Pty::start(cmd, data)
    }

    /// Runs `cmd` on a new terminal; `data` is removed when the Pty is dropped.
    pub fn start(mut cmd: Command, data: std::path::PathBuf) -> Pty {
        let mut master_fd = -1;
        let mut slave_fd = -1;
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: the out pointers are valid; a null name and termios ask for the defaults
        // (cooked mode, as a fresh terminal has).
        let rc = unsafe {
            libc::openpty(
                &mut master_fd,
                &mut slave_fd,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two fresh descriptors that nothing else owns.
        let (master, slave) =
            unsafe { (File::from_raw_fd(master_fd), OwnedFd::from_raw_fd(slave_fd)) };
        let initial = modes_of(slave.as_raw_fd());
        let io = || Stdio::from(slave.try_clone().expect("dup the pty's slave"));
        // What the test did not set is not inherited from the test's environment.
        for var in ["NO_COLOR", "RUST_LOG"] {
            if !cmd.get_envs().any(|(k, _)| k == var) {
                cmd.env_remove(var);
            }
        }
        cmd.stdin(io())
            .stdout(io())
            .stderr(io())
            .env("TERM", "xterm-256color");
        // SAFETY: setsid and ioctl are async-signal-safe; fd 0 is the slave by now.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("the chitty-node binary starts");
        let output = Arc::new(Mutex::new(Output {
            parser: vt100::Parser::new(
                std::num::NonZeroU16::new(ROWS).expect("rows > 0"),
                std::num::NonZeroU16::new(COLS).expect("cols > 0"),
                0,
            ),
            bytes: Vec::new(),
        }));
        let mut reader = master.try_clone().expect("dup the pty's master");
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave descriptor is closed (the Pty is dropped).
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let Ok(mut out) = sink.lock() else { break };
                out.parser.process(&buf[..n]);
                out.bytes.extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child,
            master,
            slave,
            output,
            data,
            initial,
        }
    }

    /// Types (or pastes) raw bytes, all in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
        self.master.flush().expect("flush the pty");
    }

    /// The terminal's modes now.
    pub fn modes(&self) -> Modes {
        modes_of(self.slave.as_raw_fd())
    }

    /// The screen's text, rows joined by newlines.
    pub fn screen(&self) -> String {
        self.output
            .lock()
            .map(|o| o.parser.screen().contents())
            .unwrap_or_default()
    }

    /// Reads the emulated terminal's screen (cells, their attributes, which buffer is shown).
    pub fn with_screen<R>(&self, f: impl FnOnce(&vt100::Screen) -> R) -> R {
        let out = self
            .output
            .lock()
            .expect("the reader thread does not panic");
        f(out.parser.screen())
    }

    /// Every byte the child wrote, escape sequences included.
    pub fn bytes(&self) -> Vec<u8> {
        self.output
            .lock()
            .map(|o| o.bytes.clone())
            .unwrap_or_default()
    }

    /// Waits until `check` is true of the screen's text.
    pub fn wait_for_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + TIMEOUT;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            if Instant::now() >= until {
                self.fail(&format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `check` is true of every byte written so far (the reader thread may still be
    /// taking the last ones after the process exited).
    pub fn wait_for_bytes(&self, what: &str, check: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let until = Instant::now() + TIMEOUT;
        loop {
            let bytes = self.bytes();
            if check(&bytes) {
                return bytes;
            }
            if Instant::now() >= until {
                self.fail(&format!(
                    "timed out waiting for {what}; the last bytes: {:?}",
                    String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(300)..])
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the screen shows `text`.
    pub fn wait_for_text(&self, text: &str) -> String {
        self.wait_for_screen(&format!("{text:?} on the screen"), |s| s.contains(text))
    }

    /// Waits until the line editor's prompt is on the screen's last non-empty row.
    pub fn wait_for_prompt(&self) -> String {
        self.wait_for_screen("the prompt", |s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("> "))
        })
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let until = Instant::now() + TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
                _ => self.fail("timed out waiting for exit"),
            }
        }
    }

    /// Panics with the screen.
    pub fn fail(&self, why: &str) -> ! {
        panic!("{why}\n--- screen ---\n{}\n--------------", self.screen());
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
