//! What a failed dial means to a user: libp2p's [`DialError`] read into a [`DialFailure`]
//! (refused, timed out, unreachable, no such host, the wrong peer), for the `--connect`
//! reports of docs/PROTOCOL.md section 2.

use std::error::Error;
use std::io;

use libp2p::swarm::DialError;

use crate::core::event::DialFailure;

/// Reads a failed dial.
pub fn classify(error: &DialError) -> DialFailure {
    match error {
        // The swarm leaves out our own listen addresses: a target that is one has none left.
        DialError::LocalPeerId { .. } | DialError::NoAddresses => DialFailure::OwnAddress,
        DialError::WrongPeerId { obtained, .. } => DialFailure::WrongPeer {
            found: obtained.to_base58(),
        },
        DialError::Transport(attempts) => {
            // One address per `--connect` target: the first attempt says it all.
            match attempts.first() {
                Some((_, e)) => from_chain(e),
                None => DialFailure::Other(error.to_string()),
            }
        }
        other => DialFailure::Other(other.to_string()),
    }
}

/// Walks an error and its sources for the first cause a user can act on.
fn from_chain(top: &(dyn Error + 'static)) -> DialFailure {
    let mut next: Option<&(dyn Error + 'static)> = Some(top);
    let mut words: Vec<String> = Vec::new();
    while let Some(e) = next {
        let said = e.to_string();
        if !said.is_empty() && !words.iter().any(|w| w.contains(&said)) {
            words.push(said);
        }
        if let Some(why) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| from_kind(io.kind()))
        {
            return why;
        }
        // The transport's own time limit (`DIAL_TIMEOUT`) is a generic type that cannot be
        // named here; its message is fixed by libp2p.
        if e.to_string() == "Timeout has been reached" {
            return DialFailure::TimedOut;
        }
        // An io::Error's `source` skips the error it wraps: descend into that one itself.
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    // libp2p nests its errors in `Either`s, whose `source` skips the error they hold: the
    // system's error can be out of reach of the walk above, but its message ends in
    // "(os error N)", and N is the errno.
    let said = words.join(": ");
    os_error_kind(&said)
        .and_then(from_kind)
        .unwrap_or(DialFailure::Other(said))
}

/// The failures a system error's kind tells apart.
fn from_kind(kind: io::ErrorKind) -> Option<DialFailure> {
    match kind {
        io::ErrorKind::ConnectionRefused => Some(DialFailure::Refused),
        io::ErrorKind::TimedOut => Some(DialFailure::TimedOut),
        io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::AddrNotAvailable => Some(DialFailure::Unreachable),
        _ => None,
    }
}

/// The kind of the system error whose message `said` quotes (`... (os error 111)`), if any.
fn os_error_kind(said: &str) -> Option<io::ErrorKind> {
    let (_, rest) = said.rsplit_once("(os error ")?;
    let code: i32 = rest.split(')').next()?.parse().ok()?;
    Some(io::Error::from_raw_os_error(code).kind())
}

#[cfg(test)]
mod tests {
    use libp2p::core::transport::TransportError;
    use libp2p::{Multiaddr, PeerId};

    use super::*;

    fn transport(e: io::Error) -> DialError {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        DialError::Transport(vec![(addr, TransportError::Other(e))])
    }

    #[test]
    fn the_cause_is_found_under_the_layers_that_wrap_it() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&transport(refused)), DialFailure::Refused);
        // As the swarm builder boxes a transport's error: an io::Error around the cause.
        let wrapped = io::Error::other(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(classify(&transport(wrapped)), DialFailure::TimedOut);
        let unreachable = io::Error::from(io::ErrorKind::HostUnreachable);
        assert_eq!(classify(&transport(unreachable)), DialFailure::Unreachable);
        // Out of the walk's reach (behind an `Either`), but quoted.
        let quoted = io::Error::other(io::Error::from_raw_os_error(libc::ECONNREFUSED).to_string());
        assert_eq!(classify(&transport(quoted)), DialFailure::Refused);
        let odd = io::Error::other("something odd");
        assert_eq!(
            classify(&transport(odd)),
            DialFailure::Other("something odd".to_owned())
        );
        assert_eq!(classify(&DialError::NoAddresses), DialFailure::OwnAddress);
        let found = PeerId::random();
        assert_eq!(
            classify(&DialError::WrongPeerId {
                obtained: found,
                address: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            }),
            DialFailure::WrongPeer {
                found: found.to_base58()
            }
        );
    }
}
