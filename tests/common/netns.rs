//! The network lab (the `chitty-lab` crate), with the test harness's way of running nodes in it.

pub use chitty_lab::Lab;

use super::{Node, bin};

/// Starting [`Node`]s on a lab's hosts.
pub trait Spawn {
    /// Runs `chitty-node --json --username NAME ARGS...` on host `i` (from 1).
    fn spawn(&self, i: usize, name: &str, args: &[&str]) -> Node;
    /// Runs `chitty-node ARGS...` in the router namespace (of a [`Lab::routed`] lab).
    fn spawn_router(&self, name: &str, args: &[&str]) -> Node;
}

impl Spawn for Lab {
    fn spawn(&self, i: usize, name: &str, args: &[&str]) -> Node {
        let mut cmd = Lab::command(self.host(i), bin());
        cmd.args(["--json", "--username", name]).args(args);
        Node::start(name, cmd)
    }

    fn spawn_router(&self, name: &str, args: &[&str]) -> Node {
        let router = self.router().expect("a routed lab has a router");
        let mut cmd = Lab::command(router, bin());
        cmd.args(args);
        Node::start(name, cmd)
    }
}
